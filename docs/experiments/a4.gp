set terminal pngcairo size 1200,500 font 'DejaVu Sans,11'
set output 'a4.png'
set datafile separator ','
set multiplot layout 1,2 title 'A-4: classic ring, default ring, bounded-load ring (--balance-factor 1.25)'
set title 'A-1: 10,000 requests over 3 replicas'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel 'requests'
set yrange [0:*]
set grid ytics
set key top right
plot 'a4_distribution.csv' every ::1 using 2:xtic(1) title 'classic' lc rgb '#d8843b', '' every ::1 using 3 title 'default' lc rgb '#3b7dd8', '' every ::1 using 4 title 'bounded' lc rgb '#4aa564'
set title 'A-2: busiest replica over the mean, N = 2..6'
set key top left
set style data linespoints
set xlabel 'replicas (N)'
set ylabel 'busiest / mean'
set yrange [0.9:*]
set xrange [1.5:6.5]
set grid
plot 'a4_scaling.csv' every ::1 using 1:4 lw 2 pt 7 lc rgb '#d8843b' title 'classic', '' every ::1 using 1:7 lw 2 pt 7 lc rgb '#3b7dd8' title 'default', '' every ::1 using 1:10 lw 2 pt 7 lc rgb '#4aa564' title 'bounded', 1 with lines dt 2 lc rgb '#888888' title 'perfect'
unset multiplot
