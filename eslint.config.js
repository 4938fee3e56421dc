import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['node_modules/**', '.shoal/**', 'bench/results/**', 'test/jepsen-lite/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  // The CLI's plain-JavaScript entry: Node's globals, not imports (an ESM import
  // of node:process builds a facade of all of process, ~5 ms of every command).
  { files: ['bin/**/*.js'], languageOptions: { globals: { process: 'readonly' } } },
)
