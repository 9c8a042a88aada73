-- GET /api/payouts/ : the first page (default page size) of the client's payouts.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function request()
  return wrk.format("GET", "/api/payouts/", auth_headers)
end
