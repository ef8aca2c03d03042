// ESLint flat config for the web map's browser modules (npm run lint; scripts/test runs it).
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["dist/**", "node_modules/**"] },
  js.configs.recommended,
  {
    files: ["src/**/*.js", "tests/**/*.mjs"],
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: "module",
      globals: { ...globals.browser },
    },
    rules: {
      // Unused arguments document callback signatures (deck.gl accessors, event handlers).
      "no-unused-vars": ["error", { args: "none", caughtErrors: "none", varsIgnorePattern: "^_" }],
      // Empty catch blocks mark best-effort calls (storage, fullscreen) on purpose.
      "no-empty": ["error", { allowEmptyCatch: true }],
      // House style initialises a variable before a try/catch that may or may not set it.
      "no-useless-assignment": "off",
    },
  },
  {
    files: ["build.mjs", "eslint.config.js", "tests/**/*.mjs"],
    languageOptions: { globals: { ...globals.node } },
  },
];
