-- leave: a waiting consumer stops waiting (wait.lua) and takes what was handed to it.
--
-- KEYS[1]  the consumer's handoff list
-- KEYS[2..] {wiki}:jobqueue:{type}:z-mwjobsWaiters of each queue it waited on
-- Returns the handoff list's entries (jobs claimed for this consumer, oldest first); the
-- list is gone afterwards, so no push can hand it anything more.
for i = 2, #KEYS do
    redis.call('ZREM', KEYS[i], KEYS[1])
end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return items
