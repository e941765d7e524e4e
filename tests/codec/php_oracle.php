<?php
// The test oracle: real PHP answering one JSON request per line on stdin.
// Values travel as tagged trees so PHP builds them without our serializer's help:
// {"t":"n"} {"t":"b","v":true} {"t":"i","v":"123"} {"t":"d","v":"0.1"|"INF"|"-INF"|"NAN"}
// {"t":"s","v":"<base64>"} {"t":"a","v":[[<key>, <value>], ...]} where a key is
// {"t":"i","v":"5"} or {"t":"s","v":"<base64>"}.

function build($node) {
    switch ($node['t']) {
        case 'n': return null;
        case 'b': return (bool)$node['v'];
        case 'i': return intval($node['v']);
        case 'd':
            if ($node['v'] === 'INF') return INF;
            if ($node['v'] === '-INF') return -INF;
            if ($node['v'] === 'NAN') return NAN;
            return (float)$node['v'];
        case 's': return base64_decode($node['v']);
        case 'a':
            $out = [];
            foreach ($node['v'] as [$key, $value]) {
                $k = $key['t'] === 'i' ? intval($key['v']) : base64_decode($key['v']);
                $out[$k] = build($value);
            }
            return $out;
    }
    throw new Exception('bad node');
}

// Wikimedia\base_convert(hex, 16, 36, 31) by long division, independent of our code.
function hex_to_base36($hex) {
    $digits = array_map('hexdec', str_split($hex));
    $out = '';
    while (count($digits) > 0) {
        $rem = 0; $next = [];
        foreach ($digits as $d) {
            $acc = $rem * 16 + $d;
            $q = intdiv($acc, 36); $rem = $acc % 36;
            if (count($next) > 0 || $q > 0) $next[] = $q;
        }
        $out = '0123456789abcdefghijklmnopqrstuvwxyz'[$rem] . $out;
        $digits = $next;
    }
    return str_pad($out, 31, '0', STR_PAD_LEFT);
}

ini_set('serialize_precision', '-1');
while (($line = fgets(STDIN)) !== false) {
    $req = json_decode($line, true);
    $reply = [];
    try {
        switch ($req['op']) {
            case 'serialize':
                $reply['out'] = base64_encode(serialize(build($req['value'])));
                break;
            case 'json_queue_id':
                $reply['out'] = json_encode([base64_decode($req['type']), base64_decode($req['domain'])]);
                break;
            case 'rawurlencode':
                $reply['out'] = rawurlencode(base64_decode($req['text']));
                break;
            case 'job_dedup':
                $params = build($req['params']);
                foreach (['rootJobSignature', 'rootJobTimestamp', 'jobReleaseTimestamp', 'requestId'] as $p) unset($params[$p]);
                ksort($params);
                $blob = serialize(['type' => base64_decode($req['type']), 'params' => $params]);
                $reply['out'] = hex_to_base36(sha1($blob));
                $reply['blob'] = base64_encode($blob);
                break;
            case 'spec_dedup':
                // JobSpecification::getDeduplicationInfo: the same removals plus the
                // ignored params, and no ksort.
                $params = build($req['params']);
                $ignored = array_map('base64_decode', $req['ignore']);
                foreach (['rootJobSignature', 'rootJobTimestamp', 'jobReleaseTimestamp', 'requestId'] as $p) unset($params[$p]);
                foreach ($ignored as $p) unset($params[$p]);
                $blob = serialize(['type' => base64_decode($req['type']), 'params' => $params]);
                $reply['out'] = hex_to_base36(sha1($blob));
                $reply['blob'] = base64_encode($blob);
                break;
            case 'reserialize':
                // What PHP reads from our bytes, written back by PHP (null if unreadable).
                $data = base64_decode($req['data']);
                $value = @unserialize($data, ['allowed_classes' => false]);
                $ok = $value !== false || $data === 'b:0;';
                $reply['out'] = $ok ? base64_encode(serialize($value)) : null;
                break;
            case 'gzdeflate':
                $reply['out'] = base64_encode(gzdeflate(base64_decode($req['data'])));
                break;
            case 'unserialize_ok':
                $value = @unserialize(base64_decode($req['data']), ['allowed_classes' => false]);
                $reply['out'] = $value !== false || base64_decode($req['data']) === 'b:0;';
                break;
        }
    } catch (Throwable $e) {
        $reply['error'] = $e->getMessage();
    }
    echo json_encode($reply), "\n";
}
