import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import layers from './eslint/layers.js';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': ['error', { allow: ['error'] }],
    },
  },
  {
    // Dependencies between src/ folders point one way (the table in eslint/layers.js).
    files: ['src/**/*.ts'],
    plugins: { whisperline: layers },
    rules: { 'whisperline/layers': ['error', { srcDir: 'src' }] },
  },
  {
    files: ['test/**/*.ts', 'src/cli.ts'],
    rules: { 'no-console': 'off' },
  },
);
