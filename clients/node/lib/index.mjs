// rediscache: ESM entry point. The implementation is the CommonJS one (one copy of the
// classes, so `instanceof` agrees whichever way an application loads the package).
import cjs from './index.js';

export const { Cache, KeyvRedisCache, NearCache, escapePattern, TimeoutError } = cjs;
export default cjs;
