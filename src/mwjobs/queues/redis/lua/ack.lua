-- ack: delete claimed jobs for good (MediaWiki JobQueueRedis::doAck, batched).
--
-- KEYS[1]  {wiki}:jobqueue:{type}:z-claimed     ZSET  job ID scored by claim time
-- KEYS[2]  {wiki}:jobqueue:{type}:h-attempts    HASH  job ID -> times popped
-- KEYS[3]  {wiki}:jobqueue:{type}:h-data        HASH  job ID -> serialized record
-- ARGV[1..] job IDs
-- Returns one integer per ID: 1 if the job was still claimed and is now gone, else 0.
-- As MW 1.43: the claim must still exist. A job the chron already recycled or abandoned is
-- left alone (it may run again) rather than deleted under another claimant.
local kClaimed, kAttempts, kData = KEYS[1], KEYS[2], KEYS[3]

local out = {}
for i = 1, #ARGV do
    local id = ARGV[i]
    if redis.call('ZREM', kClaimed, id) == 1 then
        redis.call('HDEL', kAttempts, id)
        out[i] = redis.call('HDEL', kData, id)
    else
        out[i] = 0
    end
end
return out
