// The matrix page at `/`: one static HTML file that reads /api/v1/matrix, for people watching a rollout.

import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'

const PAGE = readFileSync(new URL('../../ui/index.html', import.meta.url), 'utf8')

export async function uiRoute (app: FastifyInstance): Promise<void> {
  app.get('/', { schema: { hide: true } }, async (_request, reply) => {
    reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'unsafe-inline'")
    return PAGE
  })
}
