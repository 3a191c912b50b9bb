<?php
// Timing half of `make bench-native` (driven by bench_native.py).  Reads a course, the grade
// matrix as PHP arrays (what code in Moodle holds after reading grade_grades), then times a whole
// regrade through each engine *including marshalling*: packing the arrays, the call, unpacking the
// results back into per-user arrays.
//   php [-d extension=...] bench.php <case.json> <repeats> <out-prefix>
require(__DIR__ . '/../plugin_autoload.php');
local_nativegrades_autoload(getenv('NATIVEGRADES_PLUGIN'));

use local_nativegrades\local\php_engine;

[$casefile, $repeats, $outprefix] = array_slice($argv, 1, 3);
$case = json_decode(file_get_contents($casefile), true);
$course = json_encode($case['course'], JSON_PRESERVE_ZERO_FRACTION);
$n = count($case['course']['items']);
$nusers = $case['nusers'];
$cells = $case['cells'];
$flags = $case['flags'];

// Packed API: final grades come back as pack('e*') + flag bytes and are unpacked into per-user
// arrays in PHP (engine::finals()).
function run(callable $regrade, string $course, array $cells, array $flags, int $nusers, int $n): array {
    $r = $regrade($course, pack('e*', ...$cells), pack('C*', ...$flags), $nusers);
    $final = array_values(unpack('e*', $r['final']));
    $users = [];
    for ($u = 0, $k = 0; $u < $nusers; $u++) {
        $row = [];
        for ($i = 0; $i < $n; $i++, $k++) {
            $row[] = $r['hasvalue'][$k] === "\1" ? $final[$k] : null;
        }
        $users[] = $row;
    }
    return [$r['final'] . $r['hasvalue'], $users];
}

// Rows API (engine::regrade_rows()): the engine returns the per-user arrays itself.
function run_rows(callable $regrade, string $course, array $cells, array $flags, int $nusers, int $n): array {
    $users = $regrade($course, pack('e*', ...$cells), pack('C*', ...$flags), $nusers);
    return [null, $users];
}

// The packed form of per-user arrays, to compare the outputs (outside the timed part).
function packed(array $users): string {
    $final = '';
    $has = '';
    foreach ($users as $row) {
        foreach ($row as $v) {
            $final .= pack('e', $v ?? 0.0);
            $has .= $v === null ? "\0" : "\1";
        }
    }
    return $final . $has;
}

$engines = ['php' => ['run', [php_engine::class, 'regrade']], 'php_rows' => ['run_rows', [php_engine::class, 'regrade_rows']]];
if (function_exists('moodle_gradebook_regrade')) {
    $engines['ext'] = ['run', 'moodle_gradebook_regrade'];
    $engines['ext_rows'] = ['run_rows', 'moodle_gradebook_regrade_rows'];
}
$report = [];
foreach ($engines as $name => [$runner, $fn]) {
    $times = [];
    for ($k = 0; $k < (int)$repeats; $k++) {
        $t0 = hrtime(true);
        [$bytes, $users] = $runner($fn, $course, $cells, $flags, $nusers, $n);
        $times[] = (hrtime(true) - $t0) / 1e9;
    }
    sort($times);
    $out = packed($users);
    if ($bytes !== null && $bytes !== $out) {
        fwrite(STDERR, "{$name}: packed result and its per-user arrays differ\n");
        exit(1);
    }
    file_put_contents("{$outprefix}.{$name}.final", $out);
    $report[$name] = ['median_s' => $times[intdiv(count($times), 2)], 'min_s' => $times[0], 'runs' => count($times)];
}
echo json_encode($report), "\n";
