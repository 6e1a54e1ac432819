// docs/errors.md lists every code for operators; its Protocol section must equal PROTOCOL_ERRORS,
// and no source file may spell a code that errors.ts does not declare.

import * as errors from '../src/errors.ts'
import { checkErrorCatalogue } from '../../test/helpers/error-catalogue.ts'

checkErrorCatalogue({ section: 'Protocol', module: errors, catalogue: errors.PROTOCOL_ERRORS, src: new URL('../src/', import.meta.url) })
