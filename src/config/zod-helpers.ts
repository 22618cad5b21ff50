/** Moved to util/: kept only for the warehouse schemas until they import it from there. */
export { secretString } from '../util/secret-string.js';
