-- push: store a batch of jobs of one queue, atomically (MediaWiki JobQueueRedis::pushBlobs).
--
-- KEYS[1]  {wiki}:jobqueue:{type}:l-unclaimed   LIST  ready job IDs, newest on the left
-- KEYS[2]  {wiki}:jobqueue:{type}:h-sha1ById    HASH  job ID -> dedup hash
-- KEYS[3]  {wiki}:jobqueue:{type}:h-idBySha1    HASH  dedup hash -> job ID
-- KEYS[4]  {wiki}:jobqueue:{type}:z-delayed     ZSET  job ID scored by release time
-- KEYS[5]  {wiki}:jobqueue:{type}:h-data        HASH  job ID -> serialized record
-- KEYS[6]  global:jobqueue:s-queuesWithJobs     SET   queue IDs with live jobs
-- KEYS[7]  {wiki}:jobqueue:{type}:z-mwjobsWaiters ZSET consumers blocked on this queue
--          (an mwjobs extension, see queues/redis/handoff.py): handoff list key scored by expiry (ms)
-- KEYS[8]  {wiki}:jobqueue:{type}:z-claimed     ZSET  job ID scored by claim time
-- KEYS[9]  {wiki}:jobqueue:{type}:h-attempts    HASH  job ID -> times popped
-- ARGV[1]  queue ID, the JSON ["type","domain"]
-- ARGV[2]  wake-up channel ('' = none): when ready jobs were stored, the queue ID is
--          PUBLISHed there (an mwjobs side channel; MediaWiki and the PHP services never
--          read it, and a channel stores nothing)
-- ARGV[3]  now (UNIX seconds): the claim time of a job handed to a waiting consumer
-- ARGV[4..] four per job: job ID, dedup hash ('' = none), release time ('0' = ready now),
--           serialized record
-- Returns the number of jobs stored. A job whose dedup hash is registered (an unclaimed or
-- delayed job has it) is dropped, whatever its release time.
--
-- Handoff: while the queue has no unclaimed job and a consumer waits on it (registered by
-- wait.lua: its handoff list's name in KEYS[7], and the key <list>:live while it waits), a
-- ready job is claimed here exactly as pop_many claims one (claim time, attempts + 1, no
-- dedup entry) and its record is appended to that consumer's handoff list, which it is
-- blocked on: it gets the job without another round trip. Deleting <list>:live ends the
-- consumer's registrations on every queue at once, so it gets one job per wait and nothing
-- while it is busy; members whose :live key is gone (served, left, expired) are dropped
-- here. The rest of the batch is queued as usual. The list and :live keys are named by the
-- members, not passed in KEYS: this needs a single server (no Cluster), as MediaWiki's
-- layout does anyway.
if redis.replicate_commands then
    redis.replicate_commands() -- Redis < 5: TIME below needs effects replication
end

local kUnclaimed, kSha1ById, kIdBySha1, kDelayed, kData, kQueues, kWaiters, kClaimed, kAttempts =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local queueId, channel, now = ARGV[1], ARGV[2], ARGV[3]
local HANDOFF_TTL_MS = 60000 -- a dead consumer's list goes; the chron recycles its claims

if (#ARGV - 3) % 4 ~= 0 then
    return redis.error_reply('Unmatched arguments')
end

-- Waiters are looked at once per call, only if the queue is empty (keeps FIFO order).
local waiters = nil
if redis.call('EXISTS', kWaiters) == 1 and redis.call('LLEN', kUnclaimed) == 0 then
    local t = redis.call('TIME')
    local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('ZREMRANGEBYSCORE', kWaiters, '-inf', '(' .. nowMs)
    waiters = true
end

local function live_waiter()
    while true do
        local popped = redis.call('ZPOPMIN', kWaiters)
        if #popped == 0 then
            return nil
        end
        if redis.call('DEL', popped[1] .. ':live') == 1 then
            return popped[1]
        end
    end
end

local function hand_off(id, blob)
    local target = live_waiter()
    if not target then
        waiters = nil
        return false
    end
    redis.call('ZADD', kClaimed, now, id)
    local attempts = redis.call('HINCRBY', kAttempts, id, 1)
    redis.call('HSET', kData, id, blob)
    redis.call('RPUSH', target, queueId .. '\0' .. id .. '\0' .. attempts .. '\0' .. blob)
    redis.call('PEXPIRE', target, HANDOFF_TTL_MS)
    return true
end

local pushed, queued = 0, 0
for i = 4, #ARGV, 4 do
    local id, sha1, release, blob = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    if sha1 == '' or redis.call('HEXISTS', kIdBySha1, sha1) == 0 then
        if tonumber(release) > 0 then
            redis.call('ZADD', kDelayed, release, id)
            if sha1 ~= '' then
                redis.call('HSET', kSha1ById, id, sha1)
                redis.call('HSET', kIdBySha1, sha1, id)
            end
            redis.call('HSET', kData, id, blob)
        elseif not (waiters and hand_off(id, blob)) then
            redis.call('LPUSH', kUnclaimed, id)
            queued = queued + 1
            if sha1 ~= '' then
                redis.call('HSET', kSha1ById, id, sha1)
                redis.call('HSET', kIdBySha1, sha1, id)
            end
            redis.call('HSET', kData, id, blob)
        end
        pushed = pushed + 1
    end
end

-- Only a batch that stored something registers the queue for the chron (as MW 1.43).
if pushed > 0 then
    redis.call('SADD', kQueues, queueId)
end
if queued > 0 and channel ~= '' then
    redis.call('PUBLISH', channel, queueId)
end
return pushed
