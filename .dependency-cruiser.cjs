// dependency-cruiser: the layer rules and the folder-level cycle check (`npm run lint`).
// Layers point down: commands -> pipeline (create/install/verify/serve) -> transports ->
// blob/archive/sign -> core. Every import is resolved to its file, type-only imports included.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'transports-not-up',
      comment: 'A transport never imports a pipeline (create/install/verify/serve), the CLI or the commands.',
      severity: 'error',
      from: {path: '^src/transports/'},
      to: {path: '^src/(create|install|verify|serve|cli|commands)/'},
    },
    {
      name: 'library-not-cli',
      comment: 'Library code never imports src/cli or src/commands: progress and prompts are passed in.',
      severity: 'error',
      from: {path: '^src/', pathNot: '^src/(cli|commands)/'},
      to: {path: '^src/(cli|commands)/'},
    },
    {
      name: 'cli-through-pipeline',
      comment: 'The CLI reaches archives and targets through the pipeline (create/install/verify/serve), never a transport directly.',
      severity: 'error',
      from: {path: '^src/(cli|commands)/'},
      to: {path: '^src/transports/'},
    },
    {
      name: 'pipeline-not-up',
      comment: 'Nothing below the transports imports a pipeline (create/install/verify/serve).',
      severity: 'error',
      from: {path: '^src/(blob|sign|spec|resolve|copy|core)/'},
      to: {path: '^src/(create|install|verify|serve)/'},
    },
    {
      name: 'no-folder-cycle',
      comment: 'No cycle between the folders of src/ (e.g. src/create <-> src/install).',
      severity: 'error',
      scope: 'folder',
      from: {path: '^src/'},
      to: {circular: true},
    },
  ],
  options: {
    includeOnly: '^src/',
    tsPreCompilationDeps: true,
    tsConfig: {fileName: 'tsconfig.json'},
  },
}
