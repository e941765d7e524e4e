-- wait: register a consumer as waiting for jobs on some queues, unless there is work now.
--
-- KEYS[1]          the consumer's handoff list (push.lua appends jobs claimed for it)
-- KEYS[2], KEYS[3] per queue: {wiki}:jobqueue:{type}:l-unclaimed  LIST  ready job IDs
--                             {wiki}:jobqueue:{type}:z-mwjobsWaiters ZSET  waiting consumers
-- ...              (more pairs, one per queue)
-- ARGV[1]          how long the registration lives (ms); the consumer blocks on its list
--                  for less than that and then calls this script again
-- Returns {handed, i1, i2, ...}: handed = jobs already in the consumer's list; i = the
-- 1-based positions of queues with unclaimed jobs. The consumer is registered (on every
-- queue) only when the reply is {0}: nothing is ready, so a push after this script runs
-- hands its first job over instead of leaving it unseen until the next poll. Checking and
-- registering in one script closes the gap between "queue is empty" and "I am waiting".
-- The registration expires by itself: a consumer that dies while waiting is forgotten
-- after ARGV[1] ms (jobs handed to it by then stay claimed until the chron recycles them).
if redis.replicate_commands then
    redis.replicate_commands() -- Redis < 5: TIME below needs effects replication
end

local handoff, ttl = KEYS[1], tonumber(ARGV[1])
local out = {redis.call('LLEN', handoff)}
for i = 2, #KEYS, 2 do
    if redis.call('LLEN', KEYS[i]) > 0 then
        out[#out + 1] = i / 2
    end
end
if out[1] > 0 or #out > 1 then
    return out
end

local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + ttl
for i = 3, #KEYS, 2 do
    redis.call('ZADD', KEYS[i], expiry, handoff)
    if redis.call('PTTL', KEYS[i]) < ttl then
        redis.call('PEXPIRE', KEYS[i], ttl) -- the set goes when its last waiter would
    end
end
return out
