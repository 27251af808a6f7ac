/** The translation decorators: each wraps any `Translator` and is one itself, so they stack. */
export * from './cache.js';
export * from './fallback.js';
export * from './rate-limit.js';
export * from './timeout.js';
