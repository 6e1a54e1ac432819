// docs/errors.md lists every code for operators; its Agent section must equal AGENT_ERRORS,
// no source file may spell a code that errors.ts does not declare, and no warning or error is logged without one.

import * as errors from '../src/errors.ts'
import { checkErrorCatalogue } from '../../test/helpers/error-catalogue.ts'

checkErrorCatalogue({ section: 'Agent', module: errors, catalogue: errors.AGENT_ERRORS, src: new URL('../src/', import.meta.url) })
