set terminal pngcairo size 800,500 font 'DejaVu Sans,11'
set output 'a2.png'
set datafile separator ','
set title 'A-2: requests per replica for N = 2..6 (10,000 requests each), default ring'
set xlabel 'replicas (N)'
set ylabel 'requests per replica'
set xrange [1.5:6.5]
set yrange [0:*]
set grid
plot 'a2.csv' every ::1 using 1:2:3 with yerrorlines lw 2 pt 7 lc rgb '#3b7dd8' title 'mean +- standard deviation', 10000/x with lines dt 2 lc rgb '#aa3333' title '10000/N'
