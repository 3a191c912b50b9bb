// Where a built module's source map sends positions of the minified code: for each given string
// literal, its first occurrence in <name>.min.js is traced through <name>.min.js.map.  Prints JSON
// [{needle, generated: {line, column}, original: {source, line, column}}] (lines 1-based).
//   node trace.mjs <build dir> <name> <needle>...
import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import {TraceMap, originalPositionFor} from '@jridgewell/trace-mapping';

const [dir, name, ...needles] = process.argv.slice(2);
const code = readFileSync(join(dir, `${name}.min.js`), 'utf8');
const map = new TraceMap(readFileSync(join(dir, `${name}.min.js.map`), 'utf8'));
const lines = code.split('\n');
const out = needles.map((needle) => {
    const line = lines.findIndex((l) => l.includes(needle));
    if (line < 0) {
        return {needle, generated: null, original: null};
    }
    const column = lines[line].indexOf(needle);
    const o = originalPositionFor(map, {line: line + 1, column});
    return {needle, generated: {line: line + 1, column}, original: {source: o.source, line: o.line, column: o.column}};
});
process.stdout.write(JSON.stringify(out) + '\n');
