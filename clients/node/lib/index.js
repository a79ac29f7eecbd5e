'use strict';
// rediscache: Node client for the rediscache Redis module (CommonJS entry point).
const { Cache } = require('./cache');
const { KeyvRedisCache } = require('./keyv');
const { NearCache } = require('./near');
const { escapePattern, TimeoutError } = require('./util');

module.exports = { Cache, KeyvRedisCache, NearCache, escapePattern, TimeoutError };
