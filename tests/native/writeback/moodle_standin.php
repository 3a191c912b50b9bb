<?php
// STAND-IN for the part of Moodle's API local_nativegrades' regrader calls (a test fixture, not
// Moodle): $DB over mysqli with Moodle's conventions ({table} prefix, '?' parameters inlined as
// escaped literals as Moodle's mysqli driver does, records as objects of strings, keyed by their
// first column; insert/update ignore fields the table lacks), grade_item::fetch()/update() and
// grade_grade::update() writing their row, their history row and their event as grade_object does,
// and \core\event\user_graded / grade_item_updated written to the standard log the way the
// golden harness reads it back.  Everything Moodle does besides that (caches, completion,
// availability, feedback files) is left out: the CI test compares only the tables.
//
// Used by tests/native/writeback/run.php (test_writeback.py); the expected tables come from Moodle
// 4.5.6 itself (tests/native/golden/cases_writeback.json, writeback.sh WRITEBACK_FIXTURE=1).

define('MOODLE_INTERNAL', true);
define('FORMAT_PLAIN', '2');
define('GRADE_HISTORY_INSERT', 1);
define('GRADE_HISTORY_UPDATE', 2);
define('GRADE_TYPE_VALUE', 1);
define('SQL_PARAMS_QM', 1);

class coding_exception extends Exception {
}

class moodle_exception extends Exception {
}

/** A buffered result, iterated like Moodle's moodle_recordset. */
class moodle_recordset implements Iterator {
    private array $rows;
    private int $pos = 0;

    public function __construct(array $rows) {
        $this->rows = $rows;
    }

    public function current(): mixed {
        return $this->rows[$this->pos];
    }

    public function key(): mixed {
        return $this->pos;
    }

    public function next(): void {
        $this->pos++;
    }

    public function rewind(): void {
        $this->pos = 0;
    }

    public function valid(): bool {
        return $this->pos < count($this->rows);
    }

    public function close(): void {
        $this->rows = [];
    }
}

/** Stand-in of moodle_database on MariaDB (mysqli). */
class standin_database {
    public mysqli $db;
    private array $columns = [];
    private int $depth = 0;

    public function __construct(string $socket, string $dbname) {
        mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
        $this->db = new mysqli('localhost', 'root', '', $dbname, 0, $socket);
        $this->db->set_charset('utf8mb4');
    }

    private function sql(string $sql, array $params): string {
        $sql = preg_replace('/\{([a-z0-9_]+)\}/', 'mdl_$1', $sql);
        $parts = explode('?', $sql);
        if (count($parts) - 1 !== count($params)) {
            throw new coding_exception('stand-in $DB: ' . (count($parts) - 1) . ' placeholders, ' . count($params) . ' params: ' . $sql);
        }
        $out = array_shift($parts);
        foreach (array_values($params) as $k => $p) {
            $out .= $this->literal($p) . $parts[$k];
        }
        return $out;
    }

    private function literal(mixed $v): string {
        if ($v === null) {
            return 'NULL';
        }
        if (is_bool($v)) {
            return $v ? '1' : '0';
        }
        return "'" . $this->db->real_escape_string((string)$v) . "'";
    }

    private function query(string $sql, array $params = []): array {
        $r = $this->db->query($this->sql($sql, $params));
        $rows = [];
        while ($o = $r->fetch_object()) {
            $rows[] = $o;
        }
        $r->free();
        return $rows;
    }

    private function where(array $conditions): array {
        if (!$conditions) {
            return ['1 = 1', []];
        }
        $w = [];
        $p = [];
        foreach ($conditions as $k => $v) {
            if ($v === null) {
                $w[] = "$k IS NULL";
            } else {
                $w[] = "$k = ?";
                $p[] = $v;
            }
        }
        return [implode(' AND ', $w), $p];
    }

    private function keyed(array $rows): array {
        $out = [];
        foreach ($rows as $r) {
            $out[array_values((array)$r)[0]] = $r;
        }
        return $out;
    }

    private function columns(string $table): array {
        if (!isset($this->columns[$table])) {
            $this->columns[$table] = array_flip(array_map(fn($r) => $r->Field, $this->query("SHOW COLUMNS FROM {{$table}}")));
        }
        return $this->columns[$table];
    }

    public function get_in_or_equal($items, $type = SQL_PARAMS_QM, $prefix = 'param', $equal = true): array {
        $items = is_array($items) ? array_values($items) : [$items];
        if (!$items) {
            throw new coding_exception('stand-in $DB: get_in_or_equal() of nothing');
        }
        if (count($items) === 1) {
            return [($equal ? '= ?' : '<> ?'), $items];
        }
        return [($equal ? '' : 'NOT ') . 'IN (' . implode(',', array_fill(0, count($items), '?')) . ')', $items];
    }

    public function get_records_sql($sql, ?array $params = null): array {
        return $this->keyed($this->query($sql, $params ?? []));
    }

    public function get_records_select($table, $select, ?array $params = null, $sort = '', $fields = '*'): array {
        return $this->get_records_sql("SELECT $fields FROM {{$table}}" . ($select ? " WHERE $select" : '') .
            ($sort ? " ORDER BY $sort" : ''), $params);
    }

    public function get_records($table, array $conditions = [], $sort = '', $fields = '*'): array {
        [$w, $p] = $this->where($conditions);
        return $this->get_records_select($table, $w, $p, $sort, $fields);
    }

    public function get_records_menu($table, array $conditions = [], $sort = '', $fields = '*'): array {
        [$w, $p] = $this->where($conditions);
        $out = [];
        foreach ($this->query("SELECT $fields FROM {{$table}} WHERE $w" . ($sort ? " ORDER BY $sort" : ''), $p) as $r) {
            $r = array_values((array)$r);
            $out[$r[0]] = $r[1];
        }
        return $out;
    }

    public function get_record($table, array $conditions, $fields = '*') {
        [$w, $p] = $this->where($conditions);
        return $this->query("SELECT $fields FROM {{$table}} WHERE $w", $p)[0] ?? false;
    }

    public function get_field_sql($sql, ?array $params = null) {
        $r = $this->query($sql, $params ?? []);
        return $r ? array_values((array)$r[0])[0] : false;
    }

    public function get_fieldset_sql($sql, ?array $params = null): array {
        return array_map(fn($r) => array_values((array)$r)[0], $this->query($sql, $params ?? []));
    }

    public function get_fieldset_select($table, $return, $select, ?array $params = null): array {
        return $this->get_fieldset_sql("SELECT $return FROM {{$table}} WHERE $select", $params);
    }

    public function get_recordset_sql($sql, ?array $params = null): moodle_recordset {
        return new moodle_recordset($this->query($sql, $params ?? []));
    }

    public function get_recordset_select($table, $select, ?array $params = null, $sort = '', $fields = '*'): moodle_recordset {
        return $this->get_recordset_sql("SELECT $fields FROM {{$table}}" . ($select ? " WHERE $select" : '') .
            ($sort ? " ORDER BY $sort" : ''), $params);
    }

    public function execute($sql, ?array $params = null): bool {
        $this->db->query($this->sql($sql, $params ?? []));
        return true;
    }

    public function insert_record($table, $data, $returnid = true, $bulk = false) {
        $cols = $this->columns($table);
        $data = array_intersect_key((array)$data, $cols);
        unset($data['id']);
        $this->execute("INSERT INTO {{$table}} (" . implode(',', array_keys($data)) . ') VALUES (' .
            implode(',', array_fill(0, count($data), '?')) . ')', array_values($data));
        return $returnid ? (int)$this->db->insert_id : true;
    }

    public function insert_records($table, $rows): void {
        foreach ($rows as $r) {
            $this->insert_record($table, $r, false);
        }
    }

    public function update_record($table, $data, $bulk = false): bool {
        $data = array_intersect_key((array)$data, $this->columns($table));
        $id = $data['id'];
        unset($data['id']);
        $this->execute("UPDATE {{$table}} SET " . implode(',', array_map(fn($k) => "$k = ?", array_keys($data))) .
            ' WHERE id = ?', array_merge(array_values($data), [$id]));
        return true;
    }

    public function set_field_select($table, $field, $value, $select, ?array $params = null): bool {
        return $this->execute("UPDATE {{$table}} SET $field = ? WHERE $select", array_merge([$value], $params ?? []));
    }

    public function set_field($table, $field, $value, array $conditions = []): bool {
        [$w, $p] = $this->where($conditions);
        return $this->set_field_select($table, $field, $value, $w, $p);
    }

    public function delete_records_select($table, $select, ?array $params = null): bool {
        return $this->execute("DELETE FROM {{$table}} WHERE $select", $params);
    }

    public function start_delegated_transaction(): object {
        if ($this->depth++ === 0) {
            $this->db->begin_transaction();
        }
        $db = $this;
        return new class($db) {
            public function __construct(private standin_database $db) {
            }

            public function allow_commit(): void {
                $this->db->end(true);
            }

            public function rollback(Throwable $e): void {
                $this->db->end(false);
                throw $e;
            }
        };
    }

    /** Moodle's moodle_database::is_transaction_started(). */
    public function is_transaction_started(): bool {
        return $this->depth > 0;
    }

    public function end(bool $commit): void {
        if (--$this->depth === 0) {
            $commit ? $this->db->commit() : $this->db->rollback();
        }
    }
}

function grade_floatval(?float $number): ?float {
    if (is_null($number) || $number === '') {
        return null;
    }
    return round($number, 5);
}

function grade_floats_different($f1, $f2): bool {
    return grade_floatval($f1 === null ? null : (float)$f1) !== grade_floatval($f2 === null ? null : (float)$f2);
}

function get_config($plugin, $name = null) {
    global $STANDIN_PLUGINCFG;
    if ($name === null) {
        return (object)$STANDIN_PLUGINCFG;
    }
    return $STANDIN_PLUGINCFG[$name] ?? false;
}

function get_log_manager($reset = false) {
    return null;
}

function component_callback_exists($component, $function) {
    global $STANDIN_RESCALE;
    return !empty($STANDIN_RESCALE[substr($component, 4)]) ? 'standin_callback' : false;
}

function course_module_instance_pending_deletion($courseid, $modulename, $instanceid) {
    return false;
}

/** Writes an event's log row as logstore_standard does (the columns the harness compares). */
function standin_log(string $eventname, string $objecttable, int $objectid, int $userid, ?int $relateduserid,
        int $courseid, array $other): void {
    global $DB;
    $DB->insert_record('logstore_standard_log', ['eventname' => $eventname, 'component' => 'core',
        'action' => 'updated', 'target' => 'standin', 'objecttable' => $objecttable, 'objectid' => $objectid,
        'crud' => 'u', 'edulevel' => 0, 'contextid' => 1, 'contextlevel' => 50, 'contextinstanceid' => $courseid,
        'userid' => $userid, 'courseid' => $courseid, 'relateduserid' => $relateduserid, 'anonymous' => 0,
        'other' => json_encode($other), 'timecreated' => time(), 'origin' => 'cli', 'ip' => null, 'realuserid' => null]);
}

/** What grade_object does for both classes: properties, update() with its history row. */
#[\AllowDynamicProperties]
abstract class standin_grade_object {
    public $table;
    public $required_fields = [];
    public $optional_fields = [];
    public $id;

    public function __construct($params = null, $fetch = true) {
        foreach ((array)$params as $k => $v) {
            if (in_array($k, $this->required_fields) || array_key_exists($k, $this->optional_fields)) {
                $this->$k = $v;
            }
        }
    }

    public function get_record_data(): stdClass {
        $data = new stdClass();
        foreach ($this as $var => $value) {
            if ((in_array($var, $this->required_fields) || array_key_exists($var, $this->optional_fields)) &&
                    !is_object($value) && !is_array($value)) {
                $data->$var = $value;
            }
        }
        return $data;
    }

    public function update($source = null, $isbulkupdate = false) {
        global $DB, $CFG, $USER;
        $data = $this->get_record_data();
        $DB->update_record($this->table, $data);
        if (empty($CFG->disablegradehistory)) {
            unset($data->timecreated);
            $data->action = GRADE_HISTORY_UPDATE;
            $data->oldid = $this->id;
            $data->source = $source;
            $data->timemodified = time();
            $data->loggeduser = $USER->id;
            $DB->insert_record($this->table . '_history', $data);
        }
        return true;
    }
}

class grade_item extends standin_grade_object {
    public $table = 'grade_items';
    public $required_fields = ['id', 'courseid', 'categoryid', 'itemname', 'itemtype', 'itemmodule', 'iteminstance',
        'itemnumber', 'iteminfo', 'idnumber', 'calculation', 'gradetype', 'grademax', 'grademin', 'scaleid', 'outcomeid',
        'gradepass', 'multfactor', 'plusfactor', 'aggregationcoef', 'aggregationcoef2', 'sortorder', 'display',
        'decimals', 'hidden', 'locked', 'locktime', 'needsupdate', 'weightoverride', 'timecreated', 'timemodified'];
    public $courseid;
    public $itemname;
    public $itemtype;
    public $itemmodule;
    public $needsupdate = 1;
    public $grademin = 0;
    public $grademax = 100;
    public $multfactor = 1.0;
    public $plusfactor = 0;
    public $aggregationcoef = 0;
    public $aggregationcoef2 = 0;
    public $outcomeid;
    public $timemodified;

    public static function fetch($params) {
        global $DB;
        $r = $DB->get_record('grade_items', $params);
        return $r ? new grade_item($r, false) : false;
    }

    public static function fetch_course_item($courseid) {
        return self::fetch(['courseid' => $courseid, 'itemtype' => 'course']);
    }

    public function update($source = null, $isbulkupdate = false) {
        global $DB, $USER;
        if (empty($this->outcomeid)) {
            $this->outcomeid = null;
        }
        $db = $DB->get_record('grade_items', ['id' => $this->id]);
        $changed = false;
        foreach (['calculation', 'categoryid', 'gradetype', 'scaleid', 'outcomeid', 'locktime'] as $f) {
            $changed = $changed || $db->$f != $this->$f;
        }
        foreach (['grademin', 'grademax', 'multfactor', 'plusfactor', 'aggregationcoef', 'aggregationcoef2',
                'weightoverride'] as $f) {
            $changed = $changed || grade_floats_different($db->$f, $this->$f);
        }
        $changed = $changed || (!$db->needsupdate && $this->needsupdate) || (!empty($db->locked) && empty($this->locked));
        if ($changed) {
            // force_regrading(): this item and the course item.
            $this->needsupdate = 1;
            $DB->set_field_select('grade_items', 'needsupdate', 1, "(itemtype='course' OR id=?) AND courseid=?",
                [$this->id, $this->courseid]);
        }
        $this->timemodified = time();
        foreach (['grademin', 'grademax', 'multfactor', 'plusfactor', 'aggregationcoef', 'aggregationcoef2'] as $f) {
            $this->$f = grade_floatval($this->$f === null ? null : (float)$this->$f);
        }
        parent::update($source, $isbulkupdate);
        standin_log('\\core\\event\\grade_item_updated', 'grade_items', (int)$this->id, (int)$USER->id, null,
            (int)$this->courseid, ['itemname' => $this->itemname, 'itemtype' => $this->itemtype,
                'itemmodule' => $this->itemmodule]);
        return true;
    }
}

class grade_grade extends standin_grade_object {
    public $table = 'grade_grades';
    public $required_fields = ['id', 'itemid', 'userid', 'rawgrade', 'rawgrademax', 'rawgrademin', 'rawscaleid',
        'usermodified', 'finalgrade', 'hidden', 'locked', 'locktime', 'exported', 'overridden', 'excluded', 'timecreated',
        'timemodified', 'aggregationstatus', 'aggregationweight'];
    public $optional_fields = ['feedback' => null, 'feedbackformat' => 0, 'information' => null, 'informationformat' => 0];
    public $itemid;
    public $userid;
    public $rawgrade;
    public $rawgrademax = 100;
    public $rawgrademin = 0;
    public $rawscaleid;
    public $usermodified;
    public $finalgrade;
    public $hidden = 0;
    public $locked = 0;
    public $locktime = 0;
    public $exported = 0;
    public $overridden = 0;
    public $excluded = 0;
    public $timecreated = null;
    public $timemodified = null;
    public $aggregationstatus = 'unknown';
    public $aggregationweight = null;
    public $feedback;
    public $feedbackformat = FORMAT_PLAIN;
    public $information;
    public $informationformat = FORMAT_PLAIN;
    public $grade_item;

    public function load_grade_item() {
        if (empty($this->grade_item)) {
            $this->grade_item = grade_item::fetch(['id' => $this->itemid]);
        }
        return $this->grade_item;
    }

    public function update($source = null, $isbulkupdate = false) {
        foreach (['rawgrade', 'finalgrade', 'rawgrademin', 'rawgrademax'] as $f) {
            $this->$f = grade_floatval($this->$f === null ? null : (float)$this->$f);
        }
        return parent::update($source, $isbulkupdate);
    }
}

class grade_category {
    public static function clean_record_set(): void {
        // Traced (run.php): the regrader must clear Moodle's grade object caches before the events.
        $GLOBALS['STANDIN_TRACE'][] = 'clean_record_set';
    }
}
