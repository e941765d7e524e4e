-- wait: register a consumer as waiting for jobs on some queues, unless there is work now.
--
-- KEYS[1]          the consumer's handoff list (push.lua appends jobs claimed for it);
--                  KEYS[1]..':live' exists while it is registered
-- KEYS[2], KEYS[3] per queue: {wiki}:jobqueue:{type}:l-unclaimed  LIST  ready job IDs
--                             {wiki}:jobqueue:{type}:z-mwjobsWaiters ZSET  waiting consumers
-- ...              (more pairs, one per queue: ARGV[2] of them)
-- KEYS[2+2n..]     z-mwjobsWaiters of queues the consumer skips this time (its types back
--                  off): any old member of ours there is removed
-- ARGV[1]          how long the registration lives (ms): the consumer's block plus a margin
-- ARGV[2]          n, the number of queue pairs
-- Returns {handed, i1, i2, ...}: handed = the jobs already in the consumer's list (taken off
-- it: they are the caller's now), i = the 1-based positions of queues with unclaimed jobs.
-- The consumer is registered (on every queue) only when nothing was handed and nothing is
-- ready: a push after this script runs then hands its job over instead of leaving it unseen
-- until the next poll. Checking and registering in one script closes the gap between "the
-- queue is empty" and "I am waiting". A registration ends when a push serves it, when the
-- consumer leaves (leave.lua), or by itself after ARGV[1] ms (a consumer that died).
if redis.replicate_commands then
    redis.replicate_commands() -- Redis < 5: TIME below needs effects replication
end

local handoff, ttl, pairs = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local lastPair = 1 + 2 * pairs
for i = lastPair + 1, #KEYS do
    redis.call('ZREM', KEYS[i], handoff)
end
local handed = redis.call('LRANGE', handoff, 0, -1)
local out = {handed}
if #handed > 0 then
    redis.call('DEL', handoff)
end
for i = 2, lastPair, 2 do
    if redis.call('LLEN', KEYS[i]) > 0 then
        out[#out + 1] = i / 2
    end
end
if #handed > 0 or #out > 1 then
    return out
end

local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', handoff .. ':live', 1, 'PX', ttl)
for i = 3, lastPair, 2 do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. nowMs) -- the dead, if no push did
    redis.call('ZADD', KEYS[i], nowMs + ttl, handoff)
    if redis.call('PTTL', KEYS[i]) < ttl then
        redis.call('PEXPIRE', KEYS[i], ttl) -- the set goes when its last waiter would
    end
end
return out
