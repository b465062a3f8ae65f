-- wrk: every request carries a random request_id, as clients of a
-- consistent-hashing balancer do.
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/home?request_id=" .. math.random(1, 1000000000))
end
