// Writes src/metadata.ts: what the @nestjs/swagger CLI plugin reads from the DTOs and controllers
// (types, JSDoc comments, class-validator bounds), for SwaggerModule.loadPluginMetadata (app.factory.ts).
// SWC builds the app and runs no TypeScript plugin, so the plugin's readonly visitor runs here instead,
// through the Nest CLI's own PluginMetadataGenerator, with the plugin options of nest-cli.json.
//
//   node scripts/openapi-metadata.mjs           # write src/metadata.ts (`npm run openapi` runs this)
//   node scripts/openapi-metadata.mjs --check   # exit 1 if src/metadata.ts is out of date (src/metadata.spec.ts)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PluginMetadataGenerator } from '@nestjs/cli/lib/compiler/plugins/plugin-metadata-generator.js';
import { PluginsLoader } from '@nestjs/cli/lib/compiler/plugins/plugins-loader.js';
import ts from 'typescript';

const SOURCE = resolve('src');
const FILE = 'metadata.ts';
const check = process.argv.includes('--check');

const { compilerOptions } = JSON.parse(readFileSync('nest-cli.json', 'utf8'));
const { readonlyVisitors } = new PluginsLoader().load(compilerOptions.plugins, { pathToSource: SOURCE });
const config = ts.getParsedCommandLineOfConfigFile(
  compilerOptions.tsConfigPath,
  {},
  {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
    },
  },
);
// The generator imports from SOURCE by relative paths, and src/metadata.ts is no input of its own.
const program = ts.createProgram({
  rootNames: config.fileNames.filter((name) => resolve(name) !== join(SOURCE, FILE)),
  options: config.options,
});

const outputDir = check ? mkdtempSync(join(tmpdir(), 'gatehouse-metadata-')) : SOURCE;
new PluginMetadataGenerator().generate({
  visitors: readonlyVisitors,
  tsProgramRef: program,
  outputDir,
  filename: FILE,
});
if (check) {
  const fresh = readFileSync(join(outputDir, FILE), 'utf8');
  rmSync(outputDir, { recursive: true, force: true });
  if (fresh !== readFileSync(join(SOURCE, FILE), 'utf8')) {
    console.error('src/metadata.ts is out of date: run `npm run openapi` and commit both files it writes.');
    process.exit(1);
  }
  console.log('src/metadata.ts is up to date.');
} else {
  console.log(`Wrote src/${FILE}`);
}
