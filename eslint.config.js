// ESLint (flat config): code rules for src/, test/ and scripts/. Import layering and folder
// cycles are checked by dependency-cruiser (.dependency-cruiser.cjs), which resolves every
// import to its file; `npm run lint` runs both.
import js from '@eslint/js'
import {defineConfig} from 'eslint/config'
import tseslint from 'typescript-eslint'

export default defineConfig(
  {ignores: ['dist/', 'dist-package/', 'node_modules/', 'examples/', '.testbed/', 'tmp/', '.scratch-*/']},
  {linterOptions: {reportUnusedDisableDirectives: 'error'}},
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      // One program for src, test and scripts (test/tsconfig.json includes all three).
      parserOptions: {project: './test/tsconfig.json', tsconfigRootDir: import.meta.dirname},
    },
    rules: {
      // node:test's test()/describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite']}],
      }],
      '@typescript-eslint/no-misused-promises': 'error',
      // `_`-prefixed names are deliberately unused (rest-destructuring, drained iterators).
      '@typescript-eslint/no-unused-vars': ['error', {argsIgnorePattern: '^_', varsIgnorePattern: '^_'}],
      // Passing on a caught error as it is, like only-throw-error allows for `throw`.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', {allowThrowingUnknown: true}],
      // An `async` function without `await` is deliberate here: it implements a Promise-returning
      // interface and turns a throw into a rejection; dropping `async` would change behaviour.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Size: a function reads on one screen, a file holds one concern.
    files: ['src/**/*.ts'],
    rules: {
      'max-lines': ['error', {max: 450, skipBlankLines: true, skipComments: true}],
      'max-lines-per-function': ['error', {max: 80, skipBlankLines: true, skipComments: true}],
    },
  },
  {
    // Workers are real modules loaded by URL, type-checked and linted like the rest: no eval'd source.
    files: ['**/*.ts', '**/*.js', '**/*.mjs'],
    rules: {
      'no-restricted-syntax': ['error', {
        // Any `eval: true` option, also one built apart from the `new Worker(...)` call.
        selector: 'Property:matches([key.name="eval"], [key.value="eval"])[value.value=true]',
        message: 'No worker from eval\'d source: load a module by URL (new Worker(new URL(\'./x.js\', import.meta.url))).',
      }],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: {globals: {process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly'}},
  },
  {
    files: ['**/*.cjs'],
    languageOptions: {sourceType: 'commonjs', globals: {process: 'readonly', require: 'readonly', module: 'writable'}},
  },
)
