-- leave: a consumer stops waiting (wait.lua) and takes what was handed to it meanwhile.
--
-- KEYS[1]  the consumer's handoff list (KEYS[1]..':live' marks it registered)
-- KEYS[2..] {wiki}:jobqueue:{type}:z-mwjobsWaiters of each queue it waited on
-- Returns the handoff list's entries (jobs claimed for this consumer, oldest first). After
-- this script no push can hand it anything until it registers again.
redis.call('DEL', KEYS[1] .. ':live')
for i = 2, #KEYS do
    redis.call('ZREM', KEYS[i], KEYS[1])
end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return items
