<?php
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

namespace local_nativegrades\local;

/**
 * Calculated-item formulas, parsed the way Moodle's EvalMath does (same token rules and operator
 * precedences) and evaluated on floats.  Mirrors gradebook-core/src/formula.rs line for line so
 * the PHP fallback and the extension agree.
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class formula {
    /** @var array postfix tokens: ['n', float] | ['v', int] | ['b', op] | ['neg'] | ['f', name, argc] */
    public array $tokens = [];

    private const OPS = ['+', '-', '*', '/', '^', '_', '>', '<', '<=', '>=', '==', '%'];

    private const BUILTIN = [
        'sin' => 'sin', 'sinh' => 'sinh', 'arcsin' => 'asin', 'asin' => 'asin', 'arcsinh' => 'asinh',
        'asinh' => 'asinh', 'cos' => 'cos', 'cosh' => 'cosh', 'arccos' => 'acos', 'acos' => 'acos',
        'arccosh' => 'acosh', 'acosh' => 'acosh', 'tan' => 'tan', 'tanh' => 'tanh', 'arctan' => 'atan',
        'atan' => 'atan', 'arctanh' => 'atanh', 'atanh' => 'atanh', 'sqrt' => 'sqrt', 'abs' => 'abs',
        'ln' => 'log', 'log' => 'log', 'exp' => 'exp', 'floor' => 'floor', 'ceil' => 'ceil',
    ];

    private const CALC = [
        'average' => ['average', [-1]], 'max' => ['max', [-1]], 'min' => ['min', [-1]],
        'mod' => ['mod', [2]], 'pi' => ['pi', [0]], 'power' => ['power', [2]], 'round' => ['round', [1, 2]],
        'sum' => ['sum', [-1]], 'ifthenelse' => ['if', [3]], 'if' => ['if', [3]],
        'cond_and' => ['and', [-1]], 'and' => ['and', [-1]], 'cond_or' => ['or', [-1]], 'or' => ['or', [-1]],
    ];

    private static function prec(string $op): int {
        switch ($op) {
            case '+':
            case '-':
                return 0;
            case '*':
            case '/':
            case '_':
            case '%':
                return 1;
            case '^':
                return 2;
            default:
                return 3;
        }
    }

    private static function operand(string $s, int $i): ?int {
        if (preg_match('/\G(?:[a-z][a-z0-9_]*\(?|\d+(?:\.\d*)?(?:e[+-]?\d*)?|\.\d+|\()/', $s, $m, 0, $i)) {
            return strlen($m[0]);
        }
        return null;
    }

    private static function op_at(string $s, int $i): array {
        $two = substr($s, $i, 2);
        if (strlen($two) == 2 && in_array($two, self::OPS, true)) {
            return [$two, 2];
        }
        $one = substr($s, $i, 1);
        if ($one !== '' && in_array($one, self::OPS, true)) {
            return [$one, 1];
        }
        return ['', 1];
    }

    private static function func_token(string $name, int $argc): array {
        if (isset(self::BUILTIN[$name])) {
            if ($argc != 1) {
                throw new \InvalidArgumentException("wrong number of arguments for {$name}(): expected 1, given {$argc}");
            }
            return ['f', self::BUILTIN[$name], 1];
        }
        if ($name === 'rand_int' || $name === 'rand_float') {
            throw new \InvalidArgumentException("{$name}() is not supported (its result is random)");
        }
        if (!isset(self::CALC[$name])) {
            throw new \InvalidArgumentException("unknown function '{$name}'");
        }
        [$f, $counts] = self::CALC[$name];
        $ok = in_array(-1, $counts, true) ? $argc > 0 : in_array($argc, $counts, true);
        if (!$ok) {
            $exp = implode('/', array_map(fn($c) => $c < 0 ? '1+' : (string)$c, $counts));
            throw new \InvalidArgumentException("wrong number of arguments for {$name}(): expected {$exp}, given {$argc}");
        }
        return ['f', $f, $argc];
    }

    private static function op_token(string $op): array {
        return $op === '_' ? ['neg'] : ['b', $op];
    }

    /**
     * Parse a formula without its leading '='.
     *
     * @param string $expr
     * @param callable $resolve name => parameter index (throws on unknown names)
     * @return formula
     */
    public static function parse(string $expr, callable $resolve): formula {
        $expr = strtolower(trim($expr));
        if (preg_match('/[^%\w\s+*^\/().,-<>=]/', $expr, $m)) {
            throw new \InvalidArgumentException("illegal character '{$m[0]}'");
        }
        if ($expr === '') {
            throw new \InvalidArgumentException('empty formula');
        }
        $len = strlen($expr);
        $out = [];
        $stack = []; // Items: ['op', x] | ['open'] | ['fn', name] | ['count', n].
        $index = 0;
        $expectingop = false;
        while (true) {
            [$op, $oplen] = self::op_at($expr, $index);
            $ex = self::operand($expr, $index);
            $cur = substr($expr, $index, 1);
            if ($op === '-' && !$expectingop) {
                $stack[] = ['op', '_'];
                $index++;
            } else if ($op === '_') {
                throw new \InvalidArgumentException("illegal character '_'");
            } else if (($op !== '' || $ex !== null) && $expectingop) {
                if ($ex !== null && $op === '') {
                    throw new \InvalidArgumentException("implicit multiplication is not allowed (at '" .
                        substr($expr, $index) . "')");
                }
                while ($stack && end($stack)[0] === 'op') {
                    $o2 = end($stack)[1];
                    $pop = $op === '^' ? self::prec($op) < self::prec($o2) : self::prec($op) <= self::prec($o2);
                    if (!$pop) {
                        break;
                    }
                    $out[] = self::op_token($o2);
                    array_pop($stack);
                }
                $stack[] = ['op', $op];
                $index += $oplen;
                $expectingop = false;
            } else if ($cur === ')' && $expectingop) {
                while (true) {
                    $top = array_pop($stack);
                    if ($top === null) {
                        throw new \InvalidArgumentException("unexpected ')'");
                    }
                    if ($top[0] === 'open') {
                        break;
                    }
                    if ($top[0] !== 'op') {
                        throw new \InvalidArgumentException("unexpected ')'");
                    }
                    $out[] = self::op_token($top[1]);
                }
                $n = count($stack);
                if ($n >= 2 && $stack[$n - 1][0] === 'count' && $stack[$n - 2][0] === 'fn') {
                    $argc = array_pop($stack)[1];
                    $name = array_pop($stack)[1];
                    $out[] = self::func_token($name, $argc);
                }
                $index++;
            } else if ($cur === ',' && $expectingop) {
                while (true) {
                    $top = array_pop($stack);
                    if ($top === null) {
                        throw new \InvalidArgumentException("unexpected ','");
                    }
                    if ($top[0] === 'open') {
                        break;
                    }
                    if ($top[0] !== 'op') {
                        throw new \InvalidArgumentException("unexpected ','");
                    }
                    $out[] = self::op_token($top[1]);
                }
                $cnt = array_pop($stack);
                $n = count($stack);
                if ($cnt === null || $cnt[0] !== 'count' || $n < 1 || $stack[$n - 1][0] !== 'fn') {
                    throw new \InvalidArgumentException("unexpected ','");
                }
                $stack[] = ['count', $cnt[1] + 1];
                $stack[] = ['open'];
                $index++;
                $expectingop = false;
            } else if ($cur === '(' && !$expectingop) {
                $stack[] = ['open'];
                $index++;
            } else if ($ex !== null && !$expectingop) {
                $expectingop = true;
                $val = substr($expr, $index, $ex);
                if (substr($val, -1) === '(') {
                    $name = substr($val, 0, -1);
                    if ($name === 'rand_int' || $name === 'rand_float') {
                        throw new \InvalidArgumentException("{$name}() is not supported (its result is random)");
                    }
                    if (isset(self::BUILTIN[$name]) || isset(self::CALC[$name])) {
                        $stack[] = ['fn', $name];
                        $stack[] = ['count', 1];
                        $stack[] = ['open'];
                        $expectingop = false;
                        $index += $ex;
                    } else {
                        throw new \InvalidArgumentException("unknown function '{$name}'");
                    }
                } else {
                    if (preg_match('/^[a-z]/', $val)) {
                        $out[] = ['v', $resolve($val)];
                    } else {
                        if (!is_numeric($val) && !preg_match('/^\d+\.$/', $val)) {
                            throw new \InvalidArgumentException("invalid number '{$val}'");
                        }
                        $out[] = ['n', (float)$val];
                    }
                    $index += $ex;
                }
            } else if ($cur === ')') {
                $n = count($stack);
                if ($n >= 3 && $stack[$n - 1][0] === 'open' && $stack[$n - 2] === ['count', 1] && $stack[$n - 3][0] === 'fn') {
                    $name = $stack[$n - 3][1];
                    array_splice($stack, $n - 3);
                    $out[] = self::func_token($name, 0);
                    $index++;
                    $expectingop = true;
                } else {
                    throw new \InvalidArgumentException("unexpected ')'");
                }
            } else if ($op !== '' && !$expectingop) {
                throw new \InvalidArgumentException("unexpected operator '{$op}'");
            } else {
                throw new \InvalidArgumentException("unexpected input at '" . substr($expr, $index) . "'");
            }
            if ($index == $len) {
                if ($op !== '' && $ex === null && $cur !== ')') {
                    throw new \InvalidArgumentException("operator '{$op}' lacks an operand");
                }
                break;
            }
            while (substr($expr, $index, 1) === ' ') {
                $index++;
            }
            if ($index == $len) {
                throw new \InvalidArgumentException('unexpected end of formula');
            }
        }
        while ($stack) {
            $top = array_pop($stack);
            if ($top[0] === 'open') {
                throw new \InvalidArgumentException('expecting a closing bracket');
            }
            if ($top[0] !== 'op') {
                throw new \InvalidArgumentException('unbalanced function call');
            }
            $out[] = self::op_token($top[1]);
        }
        $f = new formula();
        $f->tokens = $out;
        $f->check_stack();
        return $f;
    }

    private function check_stack(): void {
        $depth = 0;
        foreach ($this->tokens as $t) {
            switch ($t[0]) {
                case 'n':
                case 'v':
                    $depth++;
                    break;
                case 'b':
                    $depth--;
                    break;
                case 'neg':
                    break;
                default:
                    $depth += 1 - (isset(self::BUILTIN[$t[1]]) || in_array($t[1], self::BUILTIN, true) ? 1 : $t[2]);
            }
            if ($depth < 1) {
                throw new \InvalidArgumentException('malformed expression');
            }
        }
        if ($depth != 1) {
            throw new \InvalidArgumentException('malformed expression');
        }
    }

    /**
     * PHP's (int) cast of a float (the `%` operator and mod()).
     *
     * @param float $v
     * @return int
     */
    private static function toint(float $v): int {
        if (!is_finite($v)) {
            return 0;
        }
        return (int)$v;
    }

    private static function phpmod(float $a, float $b): ?float {
        $x = self::toint($a);
        $y = self::toint($b);
        if ($y == 0) {
            return null;
        }
        if ($y == -1) {
            return 0.0;
        }
        return (float)($x % $y);
    }

    /**
     * Evaluate; null means EvalMath returned false (Moodle stores an empty grade).
     *
     * @param float[] $params
     * @return float|null
     */
    public function evaluate(array $params): ?float {
        $st = [];
        foreach ($this->tokens as $t) {
            switch ($t[0]) {
                case 'n':
                    $st[] = $t[1];
                    break;
                case 'v':
                    $st[] = $params[$t[1]];
                    break;
                case 'neg':
                    $st[] = -array_pop($st);
                    break;
                case 'b':
                    $b = array_pop($st);
                    $a = array_pop($st);
                    switch ($t[1]) {
                        case '+':
                            $r = $a + $b;
                            break;
                        case '-':
                            $r = $a - $b;
                            break;
                        case '*':
                            $r = $a * $b;
                            break;
                        case '/':
                            if ($b == 0) {
                                return null;
                            }
                            $r = $a / $b;
                            break;
                        case '^':
                            $r = (float)pow($a, $b);
                            break;
                        case '>':
                            $r = (float)($a > $b);
                            break;
                        case '<':
                            $r = (float)($a < $b);
                            break;
                        case '<=':
                            $r = (float)($a <= $b);
                            break;
                        case '>=':
                            $r = (float)($a >= $b);
                            break;
                        case '==':
                            $r = (float)($a == $b);
                            break;
                        default:
                            $r = self::phpmod($a, $b);
                            if ($r === null) {
                                return null;
                            }
                    }
                    $st[] = $r;
                    break;
                default:
                    [, $f, $argc] = $t;
                    if (in_array($f, self::BUILTIN, true)) {
                        $a = array_pop($st);
                        $st[] = (float)$f($a);
                        break;
                    }
                    $args = $argc ? array_splice($st, count($st) - $argc) : [];
                    switch ($f) {
                        case 'if':
                            $r = $args[0] != 0 ? $args[1] : $args[2];
                            break;
                        case 'and':
                            $r = 1.0;
                            foreach ($args as $a) {
                                if ($a == 0) {
                                    $r = 0.0;
                                    break;
                                }
                            }
                            break;
                        case 'or':
                            $r = 0.0;
                            foreach ($args as $a) {
                                if ($a != 0 || is_nan($a)) {
                                    $r = 1.0;
                                    break;
                                }
                            }
                            break;
                        case 'sum':
                        case 'average':
                            $r = 0.0;
                            foreach ($args as $a) {
                                $r += $a;
                            }
                            if ($f === 'average') {
                                $r = $r / count($args);
                            }
                            break;
                        case 'max':
                            $r = array_pop($args);
                            foreach ($args as $a) {
                                if ($r < $a) {
                                    $r = $a;
                                }
                            }
                            break;
                        case 'min':
                            $r = array_pop($args);
                            foreach ($args as $a) {
                                if ($r > $a) {
                                    $r = $a;
                                }
                            }
                            break;
                        case 'mod':
                            $r = self::phpmod($args[0], $args[1]);
                            if ($r === null) {
                                return null;
                            }
                            break;
                        case 'pi':
                            $r = M_PI;
                            break;
                        case 'power':
                            $r = (float)pow($args[0], $args[1]);
                            break;
                        case 'round':
                            $p = $args[1] ?? 0.0;
                            if (!is_finite($p) || abs($p) >= 9.2e18) {
                                return null;
                            }
                            $r = round($args[0], (int)$p);
                            break;
                        default:
                            return null;
                    }
                    $st[] = (float)$r;
            }
        }
        if (count($st) != 1) {
            return null;
        }
        return (float)$st[0];
    }
}
