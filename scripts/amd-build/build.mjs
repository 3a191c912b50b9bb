// Builds a Moodle plugin's AMD modules as Moodle 4.5's `grunt amd` does (.grunt/tasks/javascript.js):
// babel with @babel/preset-env (Moodle's browser targets, modules: false) and a plugin that adds the
// module name to define() (Moodle's babel-plugin-add-module-to-define), then terser without mangling,
// each with a source map: amd/src/<name>.js -> amd/build/<name>.min.js + <name>.min.js.map, the map
// naming ../src/<name>.js (relative to amd/build) with the source's text, and the .min.js ending in
// //# sourceMappingURL=<name>.min.js.map.
// Differences from Moodle's task: no rollup around the two steps (a single file needs no bundling;
// rollup with treeshake: false only passes the code through), no ESLint, and sources must be AMD
// define() modules - ES module sources (import/export, which Moodle turns into AMD with
// transform-es2015-modules-amd-lazy) are refused with a message.  Dynamic import() of URLs (the WASM
// glue) is left as it is (Moodle's system-import-transformer would turn it into require()).
//   node build.mjs <plugin dir> [<output dir, default <plugin>/amd/build>]
import {readFileSync, writeFileSync, readdirSync, mkdirSync} from 'node:fs';
import {join, basename} from 'node:path';
import babel from '@babel/core';
import presetEnv from '@babel/preset-env';
import {minify} from 'terser';

// Moodle 4.5's targets (.grunt/tasks/javascript.js).
const BROWSERS = ['>0.3%', 'last 2 versions', 'not ie >= 0', 'not op_mini all', 'not Opera > 0', 'not dead'];

function fail(msg) {
    process.stderr.write(`amd-build: ${msg}\n`);
    process.exit(2);
}

/** The plugin's component name from version.php ($plugin->component = '...'). */
function component(plugin) {
    let text;
    try {
        text = readFileSync(join(plugin, 'version.php'), 'utf8');
    } catch (e) {
        fail(`${plugin} is not a Moodle plugin (no readable version.php: ${e.message})`);
    }
    const m = text.match(/\$plugin->component\s*=\s*'([a-z0-9_]+)'/);
    if (!m) {
        fail(`${plugin}/version.php does not set $plugin->component`);
    }
    return m[1];
}

/** Babel plugin: add the module's name as define()'s first argument (the first define() only). */
const addModuleName = (name, file) => ({types: t}) => ({
    visitor: {
        Program: {
            exit(path) {
                let found = false;
                path.traverse({
                    ImportDeclaration(p) {
                        throw p.buildCodeFrameError(`${file}: ES module sources are not supported (write an AMD define() module)`);
                    },
                    ExportDeclaration(p) {
                        throw p.buildCodeFrameError(`${file}: ES module sources are not supported (write an AMD define() module)`);
                    },
                    CallExpression(p) {
                        if (!found && p.get('callee').isIdentifier({name: 'define'})) {
                            found = true;
                            if (!t.isStringLiteral(p.node.arguments[0])) {
                                p.node.arguments.unshift(t.stringLiteral(name));
                            }
                        }
                    },
                });
                if (!found) {
                    throw new Error(`${file}: no define() call: not an AMD module`);
                }
            },
        },
    },
});

async function build(plugin, out) {
    const comp = component(plugin);
    const srcdir = join(plugin, 'amd', 'src');
    let names;
    try {
        names = readdirSync(srcdir).filter((f) => f.endsWith('.js')).sort();
    } catch (e) {
        fail(`no AMD sources: ${e.message}`);
    }
    if (!names.length) {
        fail(`no AMD sources in ${srcdir}`);
    }
    mkdirSync(out, {recursive: true});
    for (const f of names) {
        const name = basename(f, '.js');
        const srcpath = join(srcdir, f);
        const code = readFileSync(srcpath, 'utf8');
        let step1;
        try {
            step1 = babel.transformSync(code, {
                filename: srcpath,
                sourceFileName: `../src/${f}`,
                babelrc: false,
                configFile: false,
                browserslistConfigFile: false,
                sourceMaps: true,
                comments: false,
                compact: false,
                plugins: [addModuleName(`${comp}/${name}`, srcpath)],
                presets: [[presetEnv, {
                    targets: {browsers: BROWSERS},
                    ignoreBrowserslistConfig: true,
                    modules: false,
                    useBuiltIns: false,
                }]],
            });
        } catch (e) {
            fail(e.message);
        }
        const step2 = await minify(step1.code, {
            mangle: false,
            sourceMap: {content: step1.map, filename: `${name}.min.js`, url: `${name}.min.js.map`, includeSources: true},
        });
        writeFileSync(join(out, `${name}.min.js`), step2.code + '\n');
        writeFileSync(join(out, `${name}.min.js.map`), step2.map + '\n');
        process.stdout.write(`amd-build: ${comp}/${name}: ${code.length} -> ${step2.code.length} bytes (+ map)\n`);
    }
}

const [plugin, out] = process.argv.slice(2);
if (!plugin) {
    fail('usage: node build.mjs <plugin dir> [<output dir>]');
}
await build(plugin, out || join(plugin, 'amd', 'build'));
