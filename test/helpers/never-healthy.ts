// A process that starts but never answers /healthz: it logs a line to stdout (and to stderr when
// NEVER_HEALTHY_STDERR is set) and waits to be killed. For the fleet launcher's start-up errors.

console.log(JSON.stringify({ level: 30, msg: 'still loading the probe suite' }))
if (process.env.NEVER_HEALTHY_STDERR !== undefined) console.error(process.env.NEVER_HEALTHY_STDERR)
setInterval(() => {}, 1000)
