/**
 * Kept so that `node src/bin.ts ...` still works: the executable is
 * bin/taskmesh.js (plain JavaScript, so that a start need not load Node's
 * TypeScript stripper; it runs dist/ when built and current, src/ otherwise).
 */
const executable = '../bin/taskmesh.js'
await import(executable)
