-- GET /api/payouts/{id} for random ids of existing payouts (one per line in BENCH_IDS_FILE).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local ids = {}

function init(args)
  for line in io.lines(os.getenv("BENCH_IDS_FILE")) do
    table.insert(ids, line)
  end
  math.randomseed(os.time() + thread_id)
end

function request()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", "/api/payouts/" .. id, auth_headers)
end
