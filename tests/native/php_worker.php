<?php
// Test worker: one long-running `php` process that answers JSON lines on stdin, so thousands of
// parity cases cost a pipe round trip each instead of a PHP start-up.  Each request is run through
// the pure-PHP engine (local_nativegrades) and, when loaded, the moodle_gradebook extension.
//
// Request:  {"op":"regrade","course":"<json>","grades":"<b64 e*>","flags":"<b64>","nusers":N}
//           {"op":"round","values":[[v, places], ...]}   (PHP's own round(), for the core's port)
//           {"op":"string14","values":[v, ...]}           ((float)(string)$v)
//           {"op":"load","courseid":N,"cfg":{...},"coursesettings":{...},"cats":[...],"items":[...],
//            "grades":[...],"userids":[...],"manualrescale":[...],"pendingdeletion":[...]}
//                     course_loader::from_records() on table rows as Moodle's $DB returns them
//                     -> {"course","grades","flags"} or {"refused":[reasons],"error":message}
//           {"op":"usage","course":"<json>","grades":"<b64 e*>","flags":"<b64>","nusers":N,
//            "orders":{total item id:{user index:[child item ids in the database's row order]}}}
//                     the regrader's aggregationstatus/aggregationweight per cell (every grade row
//                     present, as in the golden harness): [status, DECIMAL(10,5) weight] or null
// Response: {"php":{...}|{"error":"Class: message"},"ext":{...}|null,"php_rows":{...},"ext_rows":{...}|null}
//           (*_rows: the rows API's per-user arrays packed as {"final","hasvalue"})

$plugin = getenv('NATIVEGRADES_PLUGIN') ?: __DIR__ . '/../../moodle-plugins/local_nativegrades';
require(__DIR__ . '/plugin_autoload.php');
local_nativegrades_autoload($plugin);

use local_nativegrades\local\course_loader;
use local_nativegrades\local\php_engine;
use local_nativegrades\local\regrader;
use local_nativegrades\local\unsupported_course;

// Table rows as stdClass with string columns (NULL stays null), as Moodle's $DB returns them.
function rows(array $rows): array {
    return array_map(fn($r) => (object)array_map(fn($v) => $v === null ? null : (string)$v, $r), $rows);
}

function encode_result(array $r): array {
    return array_map('base64_encode', $r);
}

function run(callable $fn): array {
    try {
        return encode_result($fn());
    } catch (\Throwable $e) {
        return ['error' => get_class($e) . ': ' . $e->getMessage()];
    }
}

// The rows API (per-user arrays of ?float) in the packed form of the other API, to compare.
function run_rows(callable $fn): array {
    try {
        $final = '';
        $has = '';
        foreach ($fn() as $row) {
            foreach ($row as $v) {
                $final .= pack('e', $v ?? 0.0);
                $has .= $v === null ? "\0" : "\1";
            }
        }
        return encode_result(['final' => $final, 'hasvalue' => $has]);
    } catch (\Throwable $e) {
        return ['error' => get_class($e) . ': ' . $e->getMessage()];
    }
}

$hasext = function_exists('moodle_gradebook_regrade');
while (($line = fgets(STDIN)) !== false) {
    $req = json_decode($line, true);
    $op = $req['op'] ?? '';
    if ($op === 'regrade') {
        $grades = base64_decode($req['grades']);
        $flags = base64_decode($req['flags']);
        $out = [
            'php' => run(fn() => php_engine::regrade($req['course'], $grades, $flags, $req['nusers'])),
            'ext' => $hasext ? run(fn() => moodle_gradebook_regrade($req['course'], $grades, $flags, $req['nusers'])) : null,
            'php_rows' => run_rows(fn() => php_engine::regrade_rows($req['course'], $grades, $flags, $req['nusers'])),
            'ext_rows' => $hasext ?
                run_rows(fn() => moodle_gradebook_regrade_rows($req['course'], $grades, $flags, $req['nusers'])) : null,
            'php_compiled' => run(fn() => ['compiled' => php_engine::compile($req['course'])]),
        ];
    } else if ($op === 'round') {
        $out = ['values' => array_map(fn($p) => round((float)$p[0], (int)$p[1]), $req['values'])];
    } else if ($op === 'string14') {
        $out = ['values' => array_map(fn($v) => (float)(string)(float)$v, $req['values']),
                'engine' => array_map(fn($v) => php_engine::string14((float)$v), $req['values']),
                'decimal5' => array_map(fn($v) => php_engine::db_decimal5((float)$v), $req['values'])];
    } else if ($op === 'load') {
        try {
            $l = course_loader::from_records($req['courseid'], (object)$req['cfg'], $req['coursesettings'],
                rows($req['cats']), rows($req['items']), rows($req['grades']), $req['userids'],
                $req['manualrescale'] ?? [], $req['pendingdeletion'] ?? []);
            $out = ['course' => $l->coursejson, 'grades' => base64_encode($l->grades), 'flags' => base64_encode($l->flags)];
        } catch (unsupported_course $e) {
            $out = ['refused' => $e->reasons, 'error' => $e->getMessage()];
        }
    } else if ($op === 'usage') {
        $e = php_engine::from_json($req['course']);
        $e->usage = [];
        $n = count($e->items);
        $cells = array_values(unpack('e*', base64_decode($req['grades'])) ?: []);
        $flags = array_map('ord', str_split(base64_decode($req['flags'])));
        $usage = array_fill(0, $n * $req['nusers'], null);
        $index = [];
        foreach ($e->items as $i => $it) {
            $index[$it['id']] = $i;
        }
        for ($u = 0; $u < $req['nusers']; $u++) {
            // The database's row order of each category's children for this user (ties sort in it).
            $e->usageorder = [];
            foreach ($req['orders'] ?? [] as $totalid => $byuser) {
                if (isset($byuser[(string)$u])) {
                    $e->usageorder[$e->items[$index[(int)$totalid]]['own']] = array_map(fn($id) => $index[$id], $byuser[(string)$u]);
                }
            }
            $e->regrade_user(array_slice($cells, $u * $n, $n), array_slice($flags, $u * $n, $n));
            foreach ($e->usage as $c => $use) {
                $members = $e->categories[$c]['deps'];
                foreach ($e->items as $j => $it) {
                    if ($it['parent'] === $c && !$it['aggregate']) {
                        $members[] = $j;
                    }
                }
                foreach (array_unique($members) as $d) {
                    [$status, $weight] = regrader::status($use, $d, null);
                    $usage[$u * $n + $d] = [$status, $weight === null ? null : php_engine::db_decimal5($weight)];
                }
            }
        }
        $out = ['usage' => $usage];
    } else if ($op === 'info') {
        $out = ['php' => PHP_VERSION, 'zts' => PHP_ZTS, 'ext' => $hasext ? moodle_gradebook_version() : null];
    } else {
        $out = ['error' => "unknown op '{$op}'"];
    }
    echo json_encode($out, JSON_PRESERVE_ZERO_FRACTION), "\n";
}
