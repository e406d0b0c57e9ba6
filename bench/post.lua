-- wrk script: POST the file named by $BODY to the target path with a JSON content type.
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
-- BENCH_KEY: the client key modelgate checks when bench/run runs with BENCH_AUTH=1
if os.getenv("BENCH_KEY") then
    wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
end
