// This file is part of Moodle - https://moodle.org/
//
// Moodle is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// Moodle is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <https://www.gnu.org/licenses/>.

/**
 * What-if grade calculator: a student types hypothetical grades and sees category and course
 * totals update at once.  Totals come from the gradebook core compiled to WebAssembly - the same
 * Rust code the server's moodle_gradebook extension runs - so they agree with the server.
 * Progressive: the current grades render first; without WebAssembly the same module runs as plain
 * JavaScript (compiled by binaryen's wasm2js), and only if neither loads does the page ask the
 * server (local_nativegrades_whatif, same engine).
 *
 * @module     local_nativegrades/whatif
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
define(['core/ajax'], function(Ajax) {
    var HAS_VALUE = 1;

    /**
     * The compiled course of the web service (base64 of little-endian doubles) as numbers.
     *
     * @param {string} b64
     * @return {Float64Array}
     */
    function compiledCourse(b64) {
        var bin = atob(b64);
        if (bin.length % 8 !== 0) {
            throw new Error('compiled course: ' + bin.length + ' bytes is not a whole number of doubles');
        }
        var view = new DataView(new ArrayBuffer(bin.length));
        for (var i = 0; i < bin.length; i++) {
            view.setUint8(i, bin.charCodeAt(i));
        }
        var out = new Float64Array(bin.length / 8);
        for (var k = 0; k < out.length; k++) {
            out[k] = view.getFloat64(k * 8, true);
        }
        return out;
    }

    /**
     * Wrap the core's bindings (gradebook_wasm.js, however instantiated) as an engine.
     *
     * @param {string} name engine name shown on the page
     * @param {Object} glue the wasm-bindgen module
     * @param {string} compiled the compiled course (base64, see compiledCourse)
     * @return {Object} engine
     */
    function coreEngine(name, glue, compiled) {
        var calc = new glue.WhatIf(compiledCourse(compiled));
        return {
            name: name,
            recompute: function(cells, flags) {
                var out = calc.recompute(Float64Array.from(cells), Uint8Array.from(flags));
                return Promise.resolve(Array.prototype.map.call(out, function(v) {
                    return isNaN(v) ? null : v;
                }));
            }
        };
    }

    /**
     * Load the WebAssembly build of the core.
     *
     * @param {string} base URL of the directory holding gradebook_wasm.js and gradebook_wasm_bg.wasm
     * @param {string} course the compiled course (base64)
     * @return {Promise<Object>} engine
     */
    function wasmEngine(base, course) {
        if (typeof WebAssembly !== 'object' || typeof WebAssembly.instantiate !== 'function') {
            return Promise.reject(new Error('WebAssembly is not available'));
        }
        return import(base + '/gradebook_wasm.js').then(function(glue) {
            return glue.default({module_or_path: base + '/gradebook_wasm_bg.wasm'}).then(function() {
                return coreEngine('wasm', glue, course);
            });
        });
    }

    /**
     * The plain-JS path for browsers without WebAssembly: the same module compiled to JavaScript
     * by binaryen's wasm2js (gradebook_wasm_asm.js), behind the same bindings - one core, the same
     * numbers.
     *
     * @param {string} base URL of the plugin's wasm directory
     * @param {string} course the compiled course (base64)
     * @return {Promise<Object>} engine
     */
    function jsEngine(base, course) {
        return Promise.all([import(base + '/gradebook_wasm.js'), import(base + '/gradebook_wasm_asm.js')])
            .then(function(mods) {
                var glue = mods[0];
                glue.__wbg_finalize_init({exports: mods[1].instantiate(glue.__wbg_get_imports())}, null);
                return coreEngine('js', glue, course);
            });
    }

    /**
     * Last resort (neither build loads): the server computes with the same engine.
     *
     * @param {number} courseid
     * @param {number} userid
     * @return {Object} engine
     */
    function serverEngine(courseid, userid) {
        return {
            name: 'server',
            recompute: function(cells, flags) {
                return Ajax.call([{
                    methodname: 'local_nativegrades_whatif',
                    args: {courseid: courseid, userid: userid, cells: cells, flags: flags}
                }])[0].then(function(r) {
                    return r.final.map(function(f) {
                        return (f.value === undefined || f.value === null) ? null : f.value;
                    });
                });
            }
        };
    }

    /**
     * Format a grade for display.
     *
     * @param {?number} v
     * @return {string}
     */
    function format(v) {
        return v === null ? '-' : (Math.round(v * 100) / 100).toFixed(2);
    }

    /**
     * Render the calculator and wire it up.
     *
     * @param {HTMLElement} root container
     * @param {Object} data local_nativegrades_get_user_gradebook result
     * @param {number} courseid
     * @param {string} wasmbase
     * @return {Promise}
     */
    function render(root, data, courseid, wasmbase) {
        var cells = data.items.map(function(it) {
            return it.cell === undefined || it.cell === null ? 0 : it.cell;
        });
        var flags = data.items.map(function(it) {
            return it.flags;
        });
        var table = document.createElement('table');
        table.className = 'generaltable local-nativegrades-whatif';
        var outputs = [];
        data.items.forEach(function(it, i) {
            var tr = document.createElement('tr');
            var name = document.createElement('th');
            name.textContent = it.name || it.itemtype;
            tr.appendChild(name);
            var input = document.createElement('td');
            if (it.editable) {
                var field = document.createElement('input');
                field.type = 'number';
                field.step = 'any';
                field.min = it.grademin;
                field.max = it.grademax;
                field.value = (flags[i] & HAS_VALUE) ? cells[i] : '';
                field.dataset.index = i;
                field.dataset.itemid = it.id;
                field.setAttribute('aria-label', it.name || it.itemtype);
                input.appendChild(field);
            }
            tr.appendChild(input);
            var out = document.createElement('td');
            out.className = 'whatif-final';
            out.dataset.itemid = it.id;
            out.dataset.value = it.final === undefined || it.final === null ? '' : String(it.final);
            out.textContent = format(it.final === undefined ? null : it.final);
            outputs.push(out);
            tr.appendChild(out);
            table.appendChild(tr);
        });
        var status = document.createElement('p');
        status.className = 'whatif-status';
        root.innerHTML = '';
        root.appendChild(table);
        root.appendChild(status);

        var show = function(finals) {
            finals.forEach(function(v, i) {
                outputs[i].dataset.value = v === null ? '' : String(v);
                outputs[i].textContent = format(v);
            });
        };
        var start = function(engine) {
            root.dataset.engine = engine.name;
            status.textContent = engine.name;
            var pending = Promise.resolve();
            table.addEventListener('input', function(e) {
                var i = Number(e.target.dataset.index);
                if (isNaN(i)) {
                    return;
                }
                var v = e.target.value === '' ? null : Number(e.target.value);
                if (v === null || !isFinite(v)) {
                    flags[i] &= ~HAS_VALUE;
                    cells[i] = 0;
                } else {
                    flags[i] |= HAS_VALUE;
                    cells[i] = v;
                }
                root.dataset.busy = '1';
                pending = pending.then(function() {
                    var t0 = performance.now();
                    return engine.recompute(cells, flags).then(function(finals) {
                        root.dataset.lastms = String(performance.now() - t0);
                        show(finals);
                        root.dataset.busy = '';
                        root.dataset.updates = String(Number(root.dataset.updates || 0) + 1);
                    });
                }).catch(function(err) {
                    status.textContent = String(err);
                    root.dataset.busy = '';
                });
            });
            root.dataset.ready = '1';
        };
        return wasmEngine(wasmbase, data.compiled).catch(function() {
            return jsEngine(wasmbase, data.compiled);
        }).then(start, function() {
            start(serverEngine(courseid, data.userid));
        });
    }

    return {
        /**
         * Initialise the calculator in a container.
         *
         * @param {string} selector CSS selector of the container
         * @param {number} courseid
         * @param {number} userid 0 for the current user
         * @param {string} wasmbase URL of the plugin's wasm directory
         * @return {Promise}
         */
        init: function(selector, courseid, userid, wasmbase) {
            var root = document.querySelector(selector);
            return Ajax.call([{
                methodname: 'local_nativegrades_get_user_gradebook',
                args: {courseid: courseid, userid: userid}
            }])[0].then(function(data) {
                return render(root, data, courseid, wasmbase);
            });
        }
    };
});
