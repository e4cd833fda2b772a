"""`edgegen demo`: embedded broker, gateway and virtual nodes on faulty pump data (run), the data and its fault
plan (data), what storage holds afterwards (readback), and the HTML report (report)."""
