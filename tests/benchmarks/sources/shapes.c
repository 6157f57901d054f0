/* Structs and an enum, no handle: on a cache hit the fast binder serves it all, without cffi. */
#include <math.h>

typedef enum { SHAPE_POINT, SHAPE_SEGMENT, SHAPE_BOX } Shape;
typedef struct { double x, y; } Vec2;
typedef struct { Vec2 low, high; Shape shape; } Box;

double box_area(Box b) { return fabs((b.high.x - b.low.x) * (b.high.y - b.low.y)); }
Vec2 box_centre(const Box *b) { Vec2 c = {(b->low.x + b->high.x) / 2, (b->low.y + b->high.y) / 2}; return c; }
Shape box_shape(Box b) { return b.shape; }
