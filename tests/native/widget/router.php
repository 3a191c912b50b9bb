<?php
// Test server for the widget harness (php -S ... router.php): serves index.html, the built plugin
// (amd/build, wasm/) and answers /ajax.php like Moodle's lib/ajax/service.php would - a stand-in
// for Moodle's web-service layer that runs the plugin's pure-PHP engine on a fixture gradebook.
//   WIDGET_PLUGIN  directory of the built plugin (local/nativegrades with wasm/)
//   WIDGET_CASE    JSON file: {"course": {...}, "cells": [...], "flags": [...], "names": [...]}

$plugin = rtrim(getenv('WIDGET_PLUGIN'), '/');
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);

if ($path === '/ajax.php') {
    require(__DIR__ . '/../plugin_autoload.php');
    local_nativegrades_autoload($plugin);
    $case = json_decode(file_get_contents(getenv('WIDGET_CASE')), true);
    $req = json_decode(file_get_contents('php://input'), true)[0];
    $course = json_encode($case['course'], JSON_PRESERVE_ZERO_FRACTION);
    $n = count($case['course']['items']);
    $finals = function (array $cells, array $flags) use ($course, $n) {
        $r = \local_nativegrades\local\php_engine::regrade($course, pack('e*', ...$cells), pack('C*', ...$flags), 1);
        $f = array_values(unpack('e*', $r['final']));
        $out = [];
        for ($i = 0; $i < $n; $i++) {
            $out[] = $r['hasvalue'][$i] === "\1" ? $f[$i] : null;
        }
        return $out;
    };
    header('Content-Type: application/json');
    try {
        if ($req['methodname'] === 'local_nativegrades_get_user_gradebook') {
            $final = $finals($case['cells'], $case['flags']);
            $items = [];
            foreach ($case['course']['items'] as $i => $it) {
                $type = $it['itemtype'] ?? 'mod';
                $items[] = ['id' => $it['id'], 'name' => $case['names'][$i] ?? ($it['idnumber'] ?? ''),
                    'itemtype' => $type, 'editable' => !in_array($type, ['course', 'category']) && empty($it['calculation']),
                    'grademin' => $it['grademin'] ?? 0, 'grademax' => $it['grademax'] ?? 100,
                    'cell' => ($case['flags'][$i] & 1) ? $case['cells'][$i] : null, 'flags' => $case['flags'][$i],
                    'final' => $final[$i]];
            }
            $data = ['engine' => 'php', 'course' => $course,
                'compiled' => base64_encode(\local_nativegrades\local\php_engine::compile($course)),
                'userid' => 3, 'hiddenaffectstotals' => false, 'items' => $items];
        } else if ($req['methodname'] === 'local_nativegrades_whatif') {
            $data = ['engine' => 'php', 'final' => array_map(fn($v) => ['value' => $v],
                $finals(array_map('floatval', $req['args']['cells']), $req['args']['flags']))];
        } else {
            throw new Exception('unknown method ' . $req['methodname']);
        }
        echo json_encode([['error' => false, 'data' => $data]], JSON_PRESERVE_ZERO_FRACTION);
    } catch (\Throwable $e) {
        echo json_encode([['error' => true, 'exception' => ['message' => $e->getMessage()]]]);
    }
    return true;
}
if (str_starts_with($path, '/local/nativegrades/')) {
    $file = realpath($plugin . '/' . substr($path, strlen('/local/nativegrades/')));
    if ($file === false || !str_starts_with($file, realpath($plugin)) || !is_file($file)) {
        http_response_code(404);
        return true;
    }
    $types = ['js' => 'text/javascript', 'wasm' => 'application/wasm', 'json' => 'application/json'];
    header('Content-Type: ' . ($types[pathinfo($file, PATHINFO_EXTENSION)] ?? 'application/octet-stream'));
    readfile($file);
    return true;
}
if ($path === '/favicon.ico') {
    http_response_code(204);
    return true;
}
if ($path === '/' || $path === '/index.html') {
    header('Content-Type: text/html; charset=utf-8');
    readfile(__DIR__ . '/index.html');
    return true;
}
http_response_code(404);
return true;
