import { DateTime, Info, Settings } from 'luxon';

// Every date this tool writes is numeric and the same on every machine: luxon formats in en-US (as the rest of the
// output does) instead of the system locale, which would also cost each command ~25 ms of Intl set-up to resolve.
Settings.defaultLocale = 'en-US';

export { DateTime, Info };
