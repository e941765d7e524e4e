-- set_aside: move claimed jobs whose records cannot be decoded to the abandoned set.
--
-- KEYS[1]  {wiki}:jobqueue:{type}:z-claimed     ZSET  job ID scored by claim time
-- KEYS[2]  {wiki}:jobqueue:{type}:z-abandoned   ZSET  job ID scored by last claim time
-- ARGV[1]  now (UNIX seconds), the abandon score: pruned after the retention like any
--          abandoned job; the record stays in h-data until then, for inspection
-- ARGV[2..] job IDs
-- Returns the number of IDs moved (an ID no longer claimed is left where it is).
-- No MW counterpart: MW's pop logs an unreadable record and leaves its ID claimed, so the
-- chron recycles it into the queue again until its attempts run out.
local kClaimed, kAbandoned = KEYS[1], KEYS[2]
local now = ARGV[1]

local moved = 0
for i = 2, #ARGV do
    if redis.call('ZREM', kClaimed, ARGV[i]) == 1 then
        redis.call('ZADD', kAbandoned, now, ARGV[i])
        moved = moved + 1
    end
end
return moved
