// Builds the example page with esbuild: index.html and app.js in the output
// directory (default dist/).
//
//   node build.mjs [--outdir DIR]   build once (the browser test does this)
//   node build.mjs --serve          build and serve on http://localhost:5173, rebuilding on change
//
// The page connects to http://localhost:3000 (the seed's SocketContext says so),
// whose default CORS_ORIGIN allows exactly http://localhost:5173.
import * as esbuild from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outdirArg = args.indexOf('--outdir');
const outdir = path.resolve(outdirArg >= 0 ? args[outdirArg + 1] : path.join(here, 'dist'));
const serve = args.includes('--serve');

const options = {
  entryPoints: [path.join(here, 'src/main.tsx')],
  outfile: path.join(outdir, 'app.js'),
  bundle: true,
  format: 'iife',
  target: 'es2020',
  jsx: 'automatic',
  sourcemap: true,
  minify: !serve,
  define: { 'process.env.NODE_ENV': JSON.stringify(serve ? 'development' : 'production') },
  logLevel: 'warning',
};

await mkdir(outdir, { recursive: true });
await copyFile(path.join(here, 'index.html'), path.join(outdir, 'index.html'));
if (serve) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  const { port } = await ctx.serve({ host: '127.0.0.1', port: 5173, servedir: outdir });
  console.log(`serving http://localhost:${port} (Ctrl-C to stop)`);
} else {
  await esbuild.build(options);
  console.log(`built ${outdir}`);
}
