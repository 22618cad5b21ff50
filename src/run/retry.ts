/** Moved to util/: kept only for the warehouse destinations until they import it from there. */
export { withRetry } from '../util/retry.js';
