#!/usr/bin/env bash
# Fails when a layer includes what it must not know: schemas/ and policy/ know no
# CAF and no socket; only bus/ includes ZeroMQ; bus/ and broker/ know no CAF;
# dash/ (pool-dash's views) knows only schemas/, and HTTP lives in apps/pool-dash.
set -u
root=${1:-$(dirname "$0")/..}
fail=0
check() { # folder, forbidden-regex, what
  local hits
  hits=$(grep -rnE "#include *[<\"]($2)" "$root/$1" 2>/dev/null)
  if [ -n "$hits" ]; then echo "layering: $1/ must not include $3:"; echo "$hits"; fail=1; fi
}
check schemas 'caf/|zmq|actors/|bus/|policy/' 'CAF, ZeroMQ or upper layers'
check policy  'caf/|zmq|actors/|bus/' 'CAF, ZeroMQ or upper layers'
check actors  'zmq|bus/' 'ZeroMQ or the bus'
check bus     'caf/|actors/|policy/' 'CAF or the actors'
check store   'caf/|zmq|actors/|bus/|policy/|exec/' 'CAF, ZeroMQ or upper layers'
check broker  'caf/|zmq|actors/' 'CAF, ZeroMQ or the actors (it hands on through callbacks)'
check exec    'caf/|zmq|actors/|bus/|policy/' 'CAF, ZeroMQ or upper layers'
check dash    'caf/|zmq|httplib|actors/|bus/|broker/|policy/|store/|exec/' 'CAF, ZeroMQ, HTTP or other layers (it knows the stream and the API only as data)'
check apps    'zmq' 'ZeroMQ directly (go through bus/)'
[ $fail = 0 ] && echo "layering: ok"
exit $fail
