-- maintain: one chron step for one queue (jobchron's periodic script, restated).
--
-- KEYS[1]  {wiki}:jobqueue:{type}:z-claimed     ZSET  job ID scored by claim time
-- KEYS[2]  {wiki}:jobqueue:{type}:h-attempts    HASH  job ID -> times popped
-- KEYS[3]  {wiki}:jobqueue:{type}:l-unclaimed   LIST  ready job IDs; the right end pops next
-- KEYS[4]  {wiki}:jobqueue:{type}:h-data        HASH  job ID -> serialized record
-- KEYS[5]  {wiki}:jobqueue:{type}:z-abandoned   ZSET  job ID scored by last claim time
-- KEYS[6]  {wiki}:jobqueue:{type}:z-delayed     ZSET  job ID scored by release time
-- KEYS[7]  global:jobqueue:s-queuesWithJobs     SET   queue IDs with live jobs
-- ARGV[1]  claim cutoff: claims scored at or before it are stale (now - claim TTL)
-- ARGV[2]  prune cutoff: abandoned jobs scored at or before it are deleted (now - 7 days)
-- ARGV[3]  max attempts: a stale job popped this many times is abandoned, not recycled
-- ARGV[4]  now: delayed jobs released at or before it become ready
-- ARGV[5]  queue ID, the JSON ["type","domain"] (the s-queuesWithJobs member)
-- ARGV[6]  the most jobs handled per phase
-- Returns {released, abandoned, pruned, undelayed, ready}.
--
-- Deviations from the PHP chron (docs/compatibility.md): the caller builds KEYS with
-- MediaWiki's own key rule (rawurlencoded wiki ID), so every queue MW writes is maintained;
-- a queue stays registered while it holds abandoned jobs, so they are still pruned; a
-- missing attempts counter counts as 0 instead of failing the script half-way.
local kClaimed, kAttempts, kUnclaimed, kData, kAbandoned, kDelayed, kQueues =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local claimCutoff, pruneCutoff, maxAttempts = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now, queueId, limit = ARGV[4], ARGV[5], tonumber(ARGV[6])

if redis.call('EXISTS', kData) == 0 then
    redis.call('SREM', kQueues, queueId)
    return {0, 0, 0, 0, 0}
end

-- Stale claims: retry at the pop end while attempts remain, else abandon (keeping the score).
local released, abandoned = 0, 0
local stale = redis.call('ZRANGEBYSCORE', kClaimed, '-inf', claimCutoff,
    'WITHSCORES', 'LIMIT', 0, limit)
for i = 1, #stale, 2 do
    local id, claimedAt = stale[i], stale[i + 1]
    local attempts = tonumber(redis.call('HGET', kAttempts, id)) or 0
    if attempts < maxAttempts then
        redis.call('RPUSH', kUnclaimed, id)
        released = released + 1
    else
        redis.call('ZADD', kAbandoned, claimedAt, id)
        abandoned = abandoned + 1
    end
    redis.call('ZREM', kClaimed, id)
end

-- Dead jobs: abandoned longer ago than the retention.
local dead = redis.call('ZRANGEBYSCORE', kAbandoned, '-inf', pruneCutoff, 'LIMIT', 0, limit)
for _, id in ipairs(dead) do
    redis.call('ZREM', kAbandoned, id)
    redis.call('HDEL', kAttempts, id)
    redis.call('HDEL', kData, id)
end

-- Due delayed jobs join the back of the queue, earliest release first.
local due = redis.call('ZRANGEBYSCORE', kDelayed, '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(due) do
    redis.call('LPUSH', kUnclaimed, id)
    redis.call('ZREM', kDelayed, id)
end

local ready = redis.call('LLEN', kUnclaimed)
local alive = ready + redis.call('ZCARD', kClaimed) + redis.call('ZCARD', kDelayed)
    + redis.call('ZCARD', kAbandoned)
if alive > 0 then
    redis.call('SADD', kQueues, queueId)
else
    redis.call('SREM', kQueues, queueId)
end
return {released, abandoned, #dead, #due, ready}
