// godist prints TiDB's four vector distances as Go computes them, so that
// vecgate's two arithmetics can be checked against the Go compiler itself:
// built with GOAMD64=v3 (or on arm64) the loops below compile to fused
// multiply-adds, with GOAMD64=v1 to a multiply then an add.
//
// The loops have the form of TiDB's pkg/types/vector_functions.go (float32
// accumulators, `distance += va[i] * vb[i]`), which is what decides whether
// the compiler fuses them. They are kept out of line (as TiDB's methods are
// called) so that each can be found in the disassembly.
//
// Input, one pair a line: the dimension, then a's and b's elements as
// float32 bit patterns in hex ("3 3f800000 40000000 ... "). Output, one line
// per pair: cosine, L2, L1 and negative inner product as float64 bit
// patterns in hex (16 digits), or "null" where TiDB answers NULL (NaN).
package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

//go:noinline
func cosineDistance(va, vb []float32) float64 {
	var distance, norma, normb float32 = 0, 0, 0
	for i := range va {
		distance += va[i] * vb[i]
		norma += va[i] * va[i]
		normb += vb[i] * vb[i]
	}
	similarity := float64(distance) / math.Sqrt(float64(norma)*float64(normb))
	if math.IsNaN(similarity) {
		return math.NaN()
	}
	if similarity > 1.0 {
		similarity = 1.0
	} else if similarity < -1.0 {
		similarity = -1.0
	}
	return 1.0 - similarity
}

//go:noinline
func l2Distance(va, vb []float32) float64 {
	var distance float32 = 0
	for i := range va {
		diff := va[i] - vb[i]
		distance += diff * diff
	}
	return math.Sqrt(float64(distance))
}

//go:noinline
func l1Distance(va, vb []float32) float64 {
	var distance float32 = 0
	for i := range va {
		diff := va[i] - vb[i]
		if diff < 0 {
			diff = -diff
		}
		distance += diff
	}
	return float64(distance)
}

//go:noinline
func innerProduct(va, vb []float32) float64 {
	var distance float32 = 0
	for i := range va {
		distance += va[i] * vb[i]
	}
	return float64(distance)
}

func negativeInnerProduct(va, vb []float32) float64 {
	return innerProduct(va, vb) * -1
}

func bits(d float64) string {
	if math.IsNaN(d) {
		return "null"
	}
	return fmt.Sprintf("%016x", math.Float64bits(d))
}

func parse(fields []string) ([]float32, error) {
	v := make([]float32, len(fields))
	for i, f := range fields {
		u, err := strconv.ParseUint(f, 16, 32)
		if err != nil {
			return nil, err
		}
		v[i] = math.Float32frombits(uint32(u))
	}
	return v, nil
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	line := 0
	for in.Scan() {
		line++
		fields := strings.Fields(in.Text())
		if len(fields) == 0 {
			continue
		}
		dim, err := strconv.Atoi(fields[0])
		if err != nil || dim < 0 || len(fields) != 1+2*dim {
			fmt.Fprintf(os.Stderr, "godist: line %d: want a dimension and 2*dim elements\n", line)
			os.Exit(2)
		}
		va, errA := parse(fields[1 : 1+dim])
		vb, errB := parse(fields[1+dim:])
		if errA != nil || errB != nil {
			fmt.Fprintf(os.Stderr, "godist: line %d: bad float32 bit pattern\n", line)
			os.Exit(2)
		}
		fmt.Fprintf(out, "%s %s %s %s\n", bits(cosineDistance(va, vb)), bits(l2Distance(va, vb)),
			bits(l1Distance(va, vb)), bits(negativeInnerProduct(va, vb)))
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "godist: %v\n", err)
		os.Exit(2)
	}
}
