/** Types for scripts/check-deps.mjs (the import-rule check run by `npm run lint`). */
export interface DepViolation {
  from: string
  to: string
  rule: {name: string; severity: string}
}
export interface TopFolderCycle {
  /** The top-level folders of src/ in the cycle, sorted. */
  members: string[]
  /** One import (`from → to`) for each folder edge inside the cycle. */
  edges: string[]
}
export function checkDeps(dir?: string, config?: string): Promise<{problems: number; violations: DepViolation[]; topCycles: TopFolderCycle[]; report: string}>
