# loopback.sh — shared by the benches that serve over 127.0.0.1
# (bench/obs, bench/kv, bench/swap): a free port, and a median.

# A TCP port free on 127.0.0.1 now (the kernel's pick).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The median of the numbers given as arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
