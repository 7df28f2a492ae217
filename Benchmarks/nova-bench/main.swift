print("nova-bench")
