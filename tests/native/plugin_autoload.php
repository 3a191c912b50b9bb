<?php
// A stand-in for Moodle's class autoloader, for the harnesses that run local_nativegrades' classes
// without Moodle (php_worker.php, widget/router.php, bench/bench.php, writeback/run.php): a class
// local_nativegrades\X\Y is loaded from <plugin>/classes/X/Y.php, the file Moodle's autoloader maps
// it to.  It proves nothing about Moodle's own loading (plugin_check.sh runs the plugin in Moodle).
//   require('plugin_autoload.php'); local_nativegrades_autoload($plugindir);

function local_nativegrades_autoload(string $plugin): void {
    spl_autoload_register(function (string $class) use ($plugin): void {
        $prefix = 'local_nativegrades\\';
        if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
            return;
        }
        $file = $plugin . '/classes/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
        if (is_file($file)) {
            require($file);
        }
    });
}
