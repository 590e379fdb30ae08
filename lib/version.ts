// The package version, read from package.json (one source of truth).
import * as path from 'path';

// eslint-disable-next-line @typescript-eslint/no-var-requires
export const VERSION: string = require(path.join(__dirname, '..', 'package.json')).version;
