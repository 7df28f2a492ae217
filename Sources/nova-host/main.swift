print("nova-host")
