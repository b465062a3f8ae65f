set terminal pngcairo size 1000,520 font 'DejaVu Sans,11'
set output 'a3.png'
set datafile separator ','
set title sprintf('A-3: server-2 killed (SIGKILL) under load - 40000 requests, 0 failed; healed in 72 ms')
set xlabel 'seconds'
set ylabel 'requests answered per 50 ms'
set yrange [0:*]
set grid
set key outside right
set arrow from 1.007, graph 0 to 1.007, graph 1 nohead lc rgb '#aa3333' lw 2
set label 'killed' at 1.007, graph 0.97 right offset -0.5,0 tc rgb '#aa3333'
set arrow from 1.007, graph 0 to 1.007, graph 0.9 nohead lc rgb '#888888' dt 2
set label 'evicted, respawned' at 1.007, graph 0.92 left offset 0.5,0
set arrow from 1.079, graph 0 to 1.079, graph 0.8 nohead lc rgb '#4aa564' lw 2
set label 're-admitted' at 1.079, graph 0.82 left offset 0.5,0 tc rgb '#4aa564'
plot 'a3.csv' every ::1 using 1:2 with steps lw 2 lc rgb '#d8843b' title 'server-1', '' every ::1 using 1:3 with steps lw 2 lc rgb '#3b7dd8' title 'server-2', '' every ::1 using 1:4 with steps lw 2 lc rgb '#9b59b6' title 'server-3', '' every ::1 using 1:5 with impulses lw 3 lc rgb '#aa3333' title 'failed'
