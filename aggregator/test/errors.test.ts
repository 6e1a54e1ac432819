// docs/errors.md lists every code for operators; its Aggregator section must equal AGGREGATOR_ERRORS,
// no source file may spell a code that errors.ts does not declare, and no warning or error is logged without one.

import * as errors from '../src/errors.ts'
import { checkErrorCatalogue } from '../../test/helpers/error-catalogue.ts'

checkErrorCatalogue({ section: 'Aggregator', module: errors, catalogue: errors.AGGREGATOR_ERRORS, src: new URL('../src/', import.meta.url) })
