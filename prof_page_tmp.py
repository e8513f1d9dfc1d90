import cProfile, time, runpy
pr = cProfile.Profile(); pr.enable()
t=time.perf_counter()
try:
    runpy.run_path("/work/wt/convolution/pages/convolution.py", run_name="__main__")
finally:
    pr.disable(); pr.dump_stats(f"/tmp/convprof/{time.time()}-{(time.perf_counter()-t)*1000:.1f}.prof")
