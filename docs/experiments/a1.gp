set terminal pngcairo size 800,500 font 'DejaVu Sans,11'
set output 'a1.png'
set datafile separator ','
set title 'A-1: 10,000 requests (ids 0..9999) over 3 replicas, default ring'
set ylabel 'requests served'
set yrange [0:*]
set style fill solid 0.8 border -1
set boxwidth 0.6
set grid ytics
unset key
plot 'a1.csv' every ::1 using 0:2:xtic(1) with boxes lc rgb '#3b7dd8', '' every ::1 using 0:($2+120):(sprintf('%d',$2)) with labels, 10000.0/3 with lines dt 2 lc rgb '#aa3333' title 'mean'
