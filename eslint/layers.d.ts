import type { ESLint } from 'eslint';

/** folder → the folders its modules may import (see layers.js). */
export declare const LAYERS: Readonly<Record<string, readonly string[]>>;
export declare const SHARED_ROOT_FILES: readonly string[];
export declare const ROOT_FILES: readonly string[];
declare const plugin: ESLint.Plugin;
export default plugin;
